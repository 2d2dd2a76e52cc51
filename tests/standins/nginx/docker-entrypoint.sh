#!/bin/sh
# Like the nginx image's entrypoint: run the command (default CMD: nginx).
exec "$@"
