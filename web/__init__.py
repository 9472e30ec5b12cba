"""The school office app (`photoconsent app`): the whole job in a browser, on the office PC.

Server-rendered pages (Jinja2) over FastAPI with a little JavaScript and no build step;
every asset is in this package, nothing comes from another site. `web.app.create_app`
builds the application; docs/office-app.md says how a school runs it.
"""
