# hoist in a container: `docker build -t hoist .` then
# `docker run -p 8080:8080 -e HOIST_REGISTRY=http://registry:5000 \
#    -v $PWD/tokens.toml:/etc/hoist/tokens.toml -e HOIST_AUTH__TOKENS_FILE=/etc/hoist/tokens.toml hoist`
# (listening on 0.0.0.0, hoist refuses to start until [auth] says who may push; see
# config/hoist.toml. HOIST_AUTH__ANONYMOUS=true runs it open, on purpose.)
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked && strip target/release/hoist

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/hoist /usr/local/bin/hoist
COPY config/hoist.toml /etc/hoist/hoist.toml
USER 65534:65534
ENV HOIST_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/hoist"]
CMD ["serve", "--config", "/etc/hoist/hoist.toml"]
