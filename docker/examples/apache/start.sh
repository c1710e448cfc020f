#!/bin/sh
# Debian's apache2 reads its settings from /etc/apache2/envvars; exec so that grace-init's child
# is the httpd parent process itself.
set -e   # envvars reads unset variables: no -u
. /etc/apache2/envvars
mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR"
exec apache2 -D FOREGROUND
