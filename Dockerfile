# muckwatch as a container image: a static binary on a distroless base, running as a non-root user.
#
#   docker build -t muckwatch .
#   docker run --rm -v $PWD/my.yaml:/etc/muckwatch/muckwatch.yaml:ro muckwatch
#
# The browser console's bundle (console/dist) is committed and embedded by go:embed, so the build
# needs no Node. The image holds the sample city under /opt/muckwatch/configs/cities; mount your
# own city folder and point the config's `city` at it. See docs/operations.md#deploy.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# the modules first: a change to the sources does not download them again
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# static (no cgo), reproducible paths, the time zone database inside (the city's time zone is
# loaded by name)
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -tags timetzdata -ldflags='-s -w' \
      -o /out/muckwatch ./cmd/muckwatch

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/muckwatch /usr/local/bin/muckwatch
COPY --from=build /src/configs/cities /opt/muckwatch/configs/cities
WORKDIR /opt/muckwatch
# 65532 is distroless' "nonroot"; numeric, so that runAsNonRoot can verify it
USER 65532:65532
# API and console, then metrics with /healthz and /readyz
EXPOSE 8080 9464
ENTRYPOINT ["/usr/local/bin/muckwatch"]
CMD ["run", "--config", "/etc/muckwatch/muckwatch.yaml"]
