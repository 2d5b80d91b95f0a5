# syntax=docker/dockerfile:1
# A static (musl) operator binary on distroless: no shell, no libc, runs as non-root 65532.
# TLS is rustls with ring (no OpenSSL); ring's C and assembly need only musl-gcc.
#   docker build -t ghcr.io/atlantiplex/atlantiplex-operator:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 ...   (each built natively or emulated)
ARG RUST_VERSION=1.89

FROM rust:${RUST_VERSION}-bookworm AS build
ARG TARGETARCH
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
RUN case "${TARGETARCH:-amd64}" in \
      amd64) echo x86_64-unknown-linux-musl > /rust-target ;; \
      arm64) echo aarch64-unknown-linux-musl > /rust-target ;; \
      *) echo "unsupported architecture $TARGETARCH" >&2; exit 1 ;; \
    esac && rustup target add "$(cat /rust-target)"
WORKDIR /src
# Download dependencies in their own layer: a source change does not download them again.
# Cargo needs every workspace member's targets to exist to read the workspace: stubs here.
COPY Cargo.toml Cargo.lock ./
COPY crates/devcluster/Cargo.toml crates/devcluster/Cargo.toml
COPY crates/bench/Cargo.toml crates/bench/Cargo.toml
RUN mkdir -p src/bin crates/devcluster/src crates/bench/src/bin \
    && for f in src/bin/atlantiplex-operator.rs crates/devcluster/src/main.rs crates/bench/src/main.rs \
                crates/bench/src/bin/admission.rs; do echo 'fn main() {}' > "$f"; done \
    && touch src/lib.rs crates/devcluster/src/lib.rs \
    && cargo fetch --locked
COPY src src
# The target directory is a build cache (BuildKit), so rebuilds compile only what changed.
RUN --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --offline --target "$(cat /rust-target)" --bin atlantiplex-operator \
    && cp "target/$(cat /rust-target)/release/atlantiplex-operator" /atlantiplex-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /atlantiplex-operator /atlantiplex-operator
# 65532 = nonroot, matching the chart's securityContext (runAsNonRoot, read-only root).
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/atlantiplex-operator"]
CMD ["run"]
