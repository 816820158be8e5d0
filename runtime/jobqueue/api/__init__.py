"""The HTTP API: tenants' front door (FastAPI on uvicorn).

`create_app(api_settings, database_settings)` builds the application;
`jobqueue api` serves it. Routes live in `routes/`, the WebSocket in `ws`,
the error table in `http_errors`.
"""
