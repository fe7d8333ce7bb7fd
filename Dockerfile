# mxguard container image: a static binary on distroless, run as non-root.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t mxguard .
#   docker run -d --name mxguard -p 25:25 --stop-timeout 45 \
#     -v /etc/mxguard:/etc/mxguard:ro -v mxguard-spool:/var/lib/mxguard \
#     mxguard
#
# docs/deploy.md ("The Docker alternative") covers the network, DNS, the
# backend, signals and log rotation.

# --- build -----------------------------------------------------------------
FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so this layer is reused while only the source changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Static (no cgo), no local paths in the binary, no symbol tables, and the
# version that "mxguard version" and the startup log print.
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/mxguard ./cmd/mxguard
# The spool and verdict log directories, to be copied with the runtime
# user's ownership (distroless has no shell to create them).
RUN mkdir -p /out/var/lib/mxguard /out/var/log/mxguard

# --- run -------------------------------------------------------------------
# static-debian12 has CA certificates (for backend.starttls), tzdata and
# /etc/passwd with "nonroot" (65532), and no shell or package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mxguard /mxguard
COPY --from=build --chown=65532:65532 /out/var/lib/mxguard /var/lib/mxguard
COPY --from=build --chown=65532:65532 /out/var/log/mxguard /var/log/mxguard
USER 65532:65532
# Binding port 25 as non-root works on Docker 20.10 and later, which sets
# net.ipv4.ip_unprivileged_port_start=0 in the container's own network
# namespace; elsewhere listen on a high port (e.g. ":2525") and publish
# it as 25 (see docs/deploy.md).
EXPOSE 25
# Config: mount /etc/mxguard read-only (mxguard.yaml, rules, TLS files).
# Spool: set spool.dir: /var/lib/mxguard in the config.
# Verdict log: verdict_log: "-" sends it to standard output (docker logs);
# a file under /var/log/mxguard needs that volume and SIGUSR1 on rotation.
VOLUME ["/var/lib/mxguard", "/var/log/mxguard"]
# SIGTERM drains for drain_timeout (default 30s): stop with a longer grace
# period than Docker's default 10s (docker stop -t 45, --stop-timeout 45,
# compose stop_grace_period: 45s).
STOPSIGNAL SIGTERM
# No HEALTHCHECK: distroless has no shell, curl or nc to run one. Use the
# orchestrator's TCP probe on port 25, or set metrics.address and probe its
# /healthz and /readyz over HTTP (docs/deploy.md).
ENTRYPOINT ["/mxguard", "serve", "--config", "/etc/mxguard/mxguard.yaml"]
