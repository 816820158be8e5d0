# jobqueue-postgres:dev with an engine; hack/image.sh builds the same image
# without one (mmdebstrap --include=postgresql). Debian's PostgreSQL 15, run
# as user 10001 by jobqueue-postgres (initdb on first start).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# ca-certificates follows the Debian point release; PostgreSQL is pinned to 15.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        postgresql=15* ca-certificates \
    && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/15/main /etc/postgresql/15/main \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin jobqueue
COPY postgres-entrypoint.sh /usr/local/bin/jobqueue-postgres
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin:/bin \
    LANG=C.UTF-8 \
    PGDATA=/var/lib/postgresql/data/pgdata
EXPOSE 5432
USER 10001
ENTRYPOINT ["/usr/local/bin/jobqueue-postgres"]
