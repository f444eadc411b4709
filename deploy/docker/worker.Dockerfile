# The CPU worker image: the native C# diffusion engine, the procedural engine, ffmpeg, and the model weights baked in.
#   docker build -f deploy/docker/worker.Dockerfile -t pfilm-worker .
# Environment: docs/configuration.md (RabbitMq__Uri, Storage__Root, Worker__Pool, Worker__DeviceSku, ...).
# Weights can also be mounted instead: set Worker__ModelPath to the mounted file.
ARG DOTNET_VERSION=10.0

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/ src/
RUN dotnet publish src/ProgrammableFilm.Worker/ProgrammableFilm.Worker.csproj -c Release -o /app/publish -p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION} AS runtime
# ffmpeg encodes each shot's MP4 (assembly tasks).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build --chown=root:root /app/publish ./
COPY --chown=root:root models/pf-scene-v3.safetensors models/pf-scene-v3.json /app/models/
# Non-root (uid 1654, the .NET images' `app` user); read-only root file system: the worker writes to Storage__Root
# (the shared volume) and /tmp only. The HTTP listener serves /health/live, /health/ready and /metrics on :8081.
ENV DOTNET_NOLOGO=1 \
    Storage__Root=/srv/pfilm \
    Worker__ModelPath=/app/models/pf-scene-v3.safetensors \
    Worker__FfmpegPath=/usr/bin/ffmpeg \
    Worker__HttpUrls=http://+:8081
USER 1654
EXPOSE 8081
ENTRYPOINT ["dotnet", "ProgrammableFilm.Worker.dll"]
