"""Demo feed: lands the next week of 2013 New York flights each run.

Replays production data arriving: writes `landing/flights/week_NN.parquet` under the
storage root and updates the Asset `nycflights_landing`, which triggers
`retrain_flight_delay`. Once all 53 weeks are landed it does nothing.
"""

from datetime import datetime

from airflow.sdk import Asset, dag, task

NYCFLIGHTS_LANDING = Asset("nycflights_landing")


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["modelkeeper", "demo"],
    doc_md=__doc__,
    default_args={"owner": "ml-platform@example.com", "retries": 1},
)
def modelkeeper_demo_feed():
    @task(outlets=[NYCFLIGHTS_LANDING])
    def land_next_week() -> list[str]:
        from airflow.sdk.exceptions import AirflowSkipException

        from modelkeeper.demo import land_next_weeks
        from modelkeeper.storage import Storage

        landed = land_next_weeks(Storage(), n=1)
        if not landed:  # skipping also leaves the Asset alone: no retrain on nothing new
            raise AirflowSkipException("all 2013 weeks already landed")
        return [str(p) for p in landed]

    land_next_week()


modelkeeper_demo_feed()
