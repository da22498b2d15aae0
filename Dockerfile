# Build stage: compile the release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock config.toml ./
COPY src ./src
COPY migrations ./migrations
COPY benches ./benches
RUN cargo build --release --locked --bin emporium

# Run stage: the binary and its default configuration only.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/target/release/emporium /usr/local/bin/emporium
COPY config.toml ./config.toml
EXPOSE 8000
ENTRYPOINT ["emporium"]
CMD ["serve"]
