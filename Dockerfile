# Build stage: compile the release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock config.toml ./
COPY src ./src
COPY migrations ./migrations
COPY benches ./benches
RUN cargo build --release --locked --bin emporium

# Run stage: the binary and its default configuration only, run by an
# unprivileged user (uid 10001, as deploy/k8s expects).
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 emporium \
    && useradd --system --uid 10001 --gid emporium --no-create-home --shell /usr/sbin/nologin emporium
WORKDIR /app
COPY --from=build /src/target/release/emporium /usr/local/bin/emporium
COPY config.toml ./config.toml
# The local media store (product images) of a single instance; several
# replicas use the S3 backend instead (docs/OPERATIONS.md).
RUN mkdir -p /app/media && chown 10001:10001 /app/media
USER 10001:10001
EXPOSE 8000 9100
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
ENTRYPOINT ["emporium"]
CMD ["serve"]
