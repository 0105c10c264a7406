# PostgreSQL 15 for the cluster of docker/compose.yaml, from Debian's own
# packages on the same base as the paracorr image (no registry needed:
# docker/base.sh finds or makes the base).
#   base=$(docker/base.sh) && docker build --build-arg BASE=$base -f docker/postgres.Dockerfile -t paracorr-postgres .
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
COPY docker/postgres-entry.sh /usr/local/bin/postgres-entry.sh
USER postgres
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
	CMD /usr/lib/postgresql/15/bin/pg_isready -h 127.0.0.1 -d paracorr -q
ENTRYPOINT ["/usr/local/bin/postgres-entry.sh"]
