# One image for every component: `jobqueue api|worker|reaper|migrate` and the
# operator (`kopf run -m jobqueue_operator`). Build a worker image of your own
# FROM this one and add your handler modules.
#
# hack/image.sh builds this file where a Docker or Podman engine exists and
# otherwise produces the same layout without one (a Debian bookworm root file
# system with Debian's Python 3.11): user 10001, the venv /opt/jobqueue on
# PATH, entrypoint `jobqueue`. BASE_IMAGE is any image with Python 3.11 and
# its venv module (e.g. a debian:bookworm with python3-venv).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime runtime
COPY operator operator
# Dependencies and the app as separate wheel sets, so the final image gets
# them as separate layers: a source change rebuilds only the app layer.
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip wheel --no-cache-dir --wheel-dir /wheels/deps . \
    && mkdir /wheels/app && mv /wheels/deps/jobqueue-*.whl /wheels/app/

FROM ${BASE_IMAGE}
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin jobqueue \
    && python3 -m venv /opt/jobqueue
COPY --from=build /wheels/deps /tmp/wheels/deps
RUN /opt/jobqueue/bin/pip install --no-cache-dir --no-index /tmp/wheels/deps/*.whl \
    && rm -rf /tmp/wheels
COPY --from=build /wheels/app /tmp/wheels/app
RUN /opt/jobqueue/bin/pip install --no-cache-dir --no-index --no-deps /tmp/wheels/app/*.whl \
    && rm -rf /tmp/wheels
ENV PATH=/opt/jobqueue/bin:$PATH \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1
WORKDIR /
USER 10001
ENTRYPOINT ["jobqueue"]
CMD ["--help"]
