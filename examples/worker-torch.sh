#!/usr/bin/env bash
# Running the diffusion engine on TorchSharp (LibTorch) instead of the native C# engine.
#
#   examples/worker-torch.sh embedded   # one process: coordinator + in-process worker, TorchSharp on this machine
#   examples/worker-torch.sh farm       # a farm worker process (needs the farm's PostgreSQL, RabbitMQ, storage)
#   examples/worker-torch.sh gpu-image  # publish the GPU worker with TorchSharp's CUDA package
#
# Worker:DiffusionEngine (env Worker__DiffusionEngine): native | torch | auto. auto, the default, is torch when
# TorchSharp's CUDA libraries and a GPU are present, else native (the faster engine on a CPU: docs/performance.md).
# The TorchSharp engine picks CUDA when LibTorch sees a GPU (fp16), else the CPU (fp32); the manifest records which.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-embedded}" in
  embedded)
    ./pfilm render examples/diffusion-boat.yaml --diffusion-engine torch --out renders
    ;;
  farm)
    : "${Database__ConnectionString:?set it as for the other farm processes (README, Running a farm)}"
    : "${RabbitMq__Uri:?}" "${Storage__Root:?}"
    # A CPU worker with TorchSharp; on a GPU machine with the CUDA build, leave DiffusionEngine at auto and set the pool
    # and the SKU the scheduler and the price table know (e.g. Worker__Pool=l40s Worker__DeviceSku=l40s).
    Worker__DiffusionEngine=torch Worker__Pool="${Worker__Pool:-cpu}" \
      dotnet run --project src/ProgrammableFilm.Worker -c Release
    ;;
  gpu-image)
    # TorchSharp-cuda-linux is not served by the package registry of the development machines: this restores only
    # where nuget.org (or a mirror with that package) is reachable, e.g. in the GPU image's build stage.
    dotnet publish src/ProgrammableFilm.Worker -c Release -p:TorchSharpBackend=cuda -o out/worker-gpu
    ;;
  *)
    echo "usage: $0 embedded|farm|gpu-image" >&2
    exit 2
    ;;
esac
