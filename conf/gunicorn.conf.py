# gunicorn settings of `appliance web`. Bind address, port and workers come
# from the appliance's settings (BACKEND_PORT, APPLIANCE_BIND, WEB_WORKERS),
# passed in by appliance/web/server.py; this file holds what does not vary.

worker_class = "gthread"
threads = 4
# Stop timeouts must nest: this < supervisord's stopwaitsecs < Docker's 10 s.
graceful_timeout = 5
timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
access_log_format = 'web %(h)s "%(r)s" %(s)s %(b)s %(L)ss'
# Workers import the app after the fork: each opens its own database pool.
preload_app = False
