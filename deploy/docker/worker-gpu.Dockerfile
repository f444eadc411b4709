# The GPU worker image: the TorchSharp engine (src/ProgrammableFilm.Engine.Torch, issue 10) built against
# TorchSharp-cuda-linux (`-p:TorchSharpBackend=cuda`) on an NVIDIA CUDA runtime base, plus ffmpeg and the weights.
#   docker build -f deploy/docker/worker-gpu.Dockerfile -t pfilm-worker-gpu .
# Needs the NVIDIA container toolkit on the node (Kubernetes: the NVIDIA device plugin, `nvidia.com/gpu` limits).
# TorchSharp-cuda-linux is not served by the registry of the development machines: this image was never built there.
ARG DOTNET_VERSION=10.0

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/ src/
RUN dotnet publish src/ProgrammableFilm.Worker/ProgrammableFilm.Worker.csproj -c Release -o /app/publish \
    -p:UseAppHost=false -p:TorchSharpBackend=cuda -r linux-x64 --self-contained false

# The .NET runtime (ASP.NET Core included) is copied from Microsoft's image onto the CUDA base.
FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION} AS dotnet

FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg ca-certificates libicu74 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 1654 --user-group --no-create-home --shell /usr/sbin/nologin app
COPY --from=dotnet /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
WORKDIR /app
COPY --from=build --chown=root:root /app/publish ./
COPY --chown=root:root models/pf-scene-v3.safetensors models/pf-scene-v3.json /app/models/
# Ubuntu 24.04's libstdc++ is new enough for libLibTorchSharp.so (no GLIBCXX patch, unlike Debian 12).
ENV DOTNET_NOLOGO=1 \
    Storage__Root=/srv/pfilm \
    Worker__ModelPath=/app/models/pf-scene-v3.safetensors \
    Worker__FfmpegPath=/usr/bin/ffmpeg \
    Worker__DiffusionEngine=torch \
    Worker__HttpUrls=http://+:8081 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 1654
EXPOSE 8081
ENTRYPOINT ["dotnet", "ProgrammableFilm.Worker.dll"]
