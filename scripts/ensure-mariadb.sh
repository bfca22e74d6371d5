#!/usr/bin/env bash
# Make sure the MariaDB server the tests use answers on 127.0.0.1:3306; start it if not.
set -euo pipefail
host=${COFFEESHOP_TEST_MYSQL_HOST:-127.0.0.1}
port=${COFFEESHOP_TEST_MYSQL_PORT:-3306}

ping() { mariadb-admin --host="$host" --port="$port" --user=root --connect-timeout=2 ping >/dev/null 2>&1; }

if ping; then exit 0; fi
if [ "$host" != "127.0.0.1" ] || [ ! -x /usr/sbin/mariadbd ]; then
  echo "MariaDB at $host:$port does not answer and cannot be started from here" >&2
  exit 1
fi
echo "starting MariaDB ..." >&2
start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
for _ in $(seq 1 60); do
  if ping; then echo "MariaDB is up" >&2; exit 0; fi
  sleep 1
done
echo "MariaDB did not start within 60 s (see its error log)" >&2
exit 1
