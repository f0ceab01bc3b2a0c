"""HTML pages and reports: Jinja2 templates with autoescape (render) and the one SVG chart."""
