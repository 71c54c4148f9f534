# syntax=docker/dockerfile:1
# Multi-stage build of the chalktalk server. The runtime image holds the
# binaries (the server and its media worker, chalktalk-media) and the FFmpeg 5.1 shared libraries the worker uses; data (the embedded store and the generated dev secret) lives in
# the /data volume. Set CHALKTALK_JWT_SECRET in production.
FROM rust:1.90-bookworm AS build
WORKDIR /src
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libclang-dev \
       libavcodec-dev libavformat-dev libavutil-dev libswscale-dev \
       libswresample-dev libavfilter-dev libavdevice-dev \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin chalktalk --bin chalktalk-media \
    && cp target/release/chalktalk target/release/chalktalk-media /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
       libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 \
       libavfilter8 libavdevice59 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data chalktalk \
    && mkdir -p /data && chown chalktalk /data
COPY --from=build /usr/local/bin/chalktalk /usr/local/bin/chalktalk-media /usr/local/bin/
ENV CHALKTALK_LISTEN=0.0.0.0:7700 \
    CHALKTALK_DATA_DIR=/data \
    CHALKTALK_LOG_FORMAT=json
VOLUME /data
EXPOSE 7700
USER chalktalk
HEALTHCHECK --interval=10s --timeout=3s \
    CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/7700 && printf "GET /health HTTP/1.0\r\n\r\n" >&3 && grep -q "200 OK" <&3'
ENTRYPOINT ["chalktalk"]
CMD ["serve"]
