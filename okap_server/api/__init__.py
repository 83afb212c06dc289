"""The /api/v1 JSON management API: thin FastAPI adapters over the use cases in
``okap_server.manage`` and the dashboard's service functions (one path for both)."""
