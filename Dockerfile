# hoist in a container.
#   docker build -t hoist .
#   docker run -p 8080:8080 -e HOIST_REGISTRY=https://registry.example \
#     -v $PWD/tokens.toml:/etc/hoist/tokens.toml -e HOIST_AUTH__TOKENS_FILE=/etc/hoist/tokens.toml hoist
# Listening on 0.0.0.0, hoist refuses to start until [auth] says who may push (see
# config/hoist.toml; HOIST_AUTH__ANONYMOUS=true runs it open, on purpose). A plain-http
# registry that is not on loopback needs HOIST_REGISTRY_ALLOW_HTTP=true too (see
# deploy/compose.yaml). Configuration: defaults < /etc/hoist/hoist.toml < HOIST_*
# environment < flags; `docker run hoist config` prints the effective one.

FROM rust:1-bookworm AS build
# ISA-L (the gzip of layers) is built from source by the isal-rs crate.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nasm autoconf automake libtool make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when Cargo.toml or Cargo.lock
# change, not on every source edit (the first build takes minutes).
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/pipeline.rs \
    && cargo build --release --locked \
    && rm -rf src benches
COPY src ./src
COPY benches ./benches
# Not stripped: [profile.release] keeps line tables, so a panic's backtrace names the line.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/hoist /usr/local/bin/hoist
COPY config/hoist.toml /etc/hoist/hoist.toml
# nobody:nogroup. hoist writes no files: it streams.
USER 65534:65534
ENV HOIST_LISTEN=0.0.0.0:8080
EXPOSE 8080
# Liveness; the image has no curl, so hoist asks itself (GET /healthz on the listener the
# configuration names, 0.0.0.0 asked on loopback).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/hoist", "healthcheck", "--config", "/etc/hoist/hoist.toml"]
# SIGTERM starts the drain (readiness 503, pushes in flight finish, drain_timeout = 30s);
# `docker stop -t 40` gives it room.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/hoist"]
CMD ["serve", "--config", "/etc/hoist/hoist.toml"]
