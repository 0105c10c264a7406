#!/bin/sh
# The cluster's database at its first start (initdb, a role and database
# "paracorr" whose password is PARACORR_DB_PASSWORD, password logins from
# the compose network only), then the server in the foreground.
set -eu
bin=/usr/lib/postgresql/15/bin
data=/var/lib/postgresql/data
: "${PARACORR_DB_PASSWORD:?set PARACORR_DB_PASSWORD}"
if [ ! -s "$data/PG_VERSION" ]; then
	"$bin/initdb" -D "$data" -U postgres --auth-local=peer --auth-host=scram-sha-256 -E UTF8 >/dev/null
	echo "host paracorr paracorr 0.0.0.0/0 scram-sha-256" >>"$data/pg_hba.conf"
	"$bin/pg_ctl" -D "$data" -w -o "-c listen_addresses=''" start >/dev/null
	# the password on stdin, not on a command line
	printf "CREATE ROLE paracorr LOGIN PASSWORD '%s';\nCREATE DATABASE paracorr OWNER paracorr;\n" \
		"$(printf '%s' "$PARACORR_DB_PASSWORD" | sed "s/'/''/g")" | "$bin/psql" -q -U postgres -d postgres
	"$bin/pg_ctl" -D "$data" -w stop >/dev/null
fi
exec "$bin/postgres" -D "$data" -c listen_addresses='*'
