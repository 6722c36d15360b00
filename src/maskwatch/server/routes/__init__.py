"""The API's routers, one module per group of endpoints. Each reads what it needs (the event store,
the detection service, limits, the API key) from :class:`~maskwatch.server.state.ServerState` through
FastAPI dependencies; :func:`~maskwatch.server.app.create_app` includes them."""
