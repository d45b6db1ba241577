"""The HTML pages: Jinja2 templates with htmx, every form also working without JavaScript."""
