# One image for every component: `jobqueue api|worker|reaper|migrate` and the
# operator (`kopf run -m jobqueue_operator`). Build a worker image of your own
# FROM this one and add your handler modules.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime runtime
COPY operator operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --uid 10001 --no-create-home jobqueue
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
ENTRYPOINT ["jobqueue"]
CMD ["--help"]
