# The API + coordinator image; the same image runs the one migration step (`migrate` argument):
#   docker build -f deploy/docker/api.Dockerfile -t pfilm-api .
#   docker run ... pfilm-api migrate      # once, before the API starts (compose service `migrate`, Helm hook Job)
#   docker run ... pfilm-api              # the API on :8080 (/health/live, /health/ready, /metrics)
# Environment: docs/configuration.md (Database__ConnectionString, RabbitMq__Uri, Storage__Root, Coordinator__*, ...).
ARG DOTNET_VERSION=10.0

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS build
# npm installs the dashboard's browser libraries (src/ProgrammableFilm.Api/dashboard/package-lock.json) during the build.
RUN apt-get update \
    && apt-get install -y --no-install-recommends npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/ src/
RUN dotnet publish src/ProgrammableFilm.Api/ProgrammableFilm.Api.csproj -c Release -o /app/publish -p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION} AS runtime
# ffmpeg decodes uploaded camera plates (MP4 or images) into frames.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build --chown=root:root /app/publish ./
# Non-root (the .NET images' `app` user, uid 1654); the root file system can be read-only: the process writes only
# to Storage__Root (a volume) and /tmp (mount a tmpfs or emptyDir there). Probes: HTTP on /health/live and
# /health/ready (no curl in the image, so no Docker HEALTHCHECK; compose and Kubernetes probe over HTTP).
ENV ASPNETCORE_URLS=http://+:8080 \
    DOTNET_NOLOGO=1 \
    Storage__Root=/srv/pfilm \
    Coordinator__FfmpegPath=/usr/bin/ffmpeg
USER 1654
EXPOSE 8080
ENTRYPOINT ["dotnet", "ProgrammableFilm.Api.dll"]
