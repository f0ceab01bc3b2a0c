"""Demo feed: replays 2013 New York flights arriving, one week per run.

Each run lands the next week's flights *without* their label for scoring
(`landing/flights_features/`, Asset `nycflights_features`, which triggers
`score_flight_delay`), and the labelled flights of the week scored before, a week late
(`landing/flights/`, Asset `nycflights_landing`, which triggers `retrain_flight_delay` and
`monitor_flight_delay`). Retraining therefore only ever sees rows whose label has come.
Runs daily (`MODELKEEPER_DEMO_FEED_SCHEDULE`; `make run` lands a week every few minutes).
Once all 53 weeks are in, it does nothing.
"""

from datetime import datetime

from airflow.sdk import Asset, dag, task

from modelkeeper.contracts.settings import settings

NYCFLIGHTS_LANDING = Asset("nycflights_landing")
NYCFLIGHTS_FEATURES = Asset("nycflights_features")


@dag(
    schedule=settings().demo_feed_schedule,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["modelkeeper", "demo"],
    doc_md=__doc__,
    default_args={"owner": "ml-platform@example.com", "retries": 1},
)
def modelkeeper_demo_feed():
    @task
    def land() -> dict[str, list[str]]:
        from modelkeeper.data.storage import Storage
        from modelkeeper.demo import land_next_features_and_labels

        landed = land_next_features_and_labels(Storage())
        return {kind: [str(p) for p in paths] for kind, paths in landed.items()}

    # Separate tasks so each Asset is updated only when its files landed (a skip emits none).
    @task(outlets=[NYCFLIGHTS_FEATURES])
    def announce_features(landed: dict[str, list[str]]) -> list[str]:
        from airflow.sdk.exceptions import AirflowSkipException

        if not landed["features"]:
            raise AirflowSkipException("no week left to land for scoring")
        return landed["features"]

    @task(outlets=[NYCFLIGHTS_LANDING])
    def announce_labels(landed: dict[str, list[str]]) -> list[str]:
        from airflow.sdk.exceptions import AirflowSkipException

        if not landed["labels"]:
            raise AirflowSkipException("no labels due yet")
        return landed["labels"]

    landed = land()
    announce_features(landed)
    announce_labels(landed)


modelkeeper_demo_feed()
