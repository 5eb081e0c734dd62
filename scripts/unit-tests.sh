#!/usr/bin/env bash
# Unit tests. Where Debian's Chromium is installed, the WebGPU kernel tests run in Node on its SwiftShader
# Vulkan driver, which keeps the kernels' double-f32 arithmetic and so must match the CPU twin bit for bit.
# Dawn dlopens libvulkan.so.1 (only Chromium's folder has it here) and the loader reads LD_LIBRARY_PATH at
# process start, hence this wrapper. Without Chromium the tests fall back to Mesa llvmpipe (looser bound).
set -euo pipefail
chromium_dir=/usr/lib/chromium
if [ -f "$chromium_dir/vk_swiftshader_icd.json" ] && [ -f "$chromium_dir/libvulkan.so.1" ]; then
  export LD_LIBRARY_PATH="$chromium_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export VK_ICD_FILENAMES="$chromium_dir/vk_swiftshader_icd.json"
fi
exec node --import ./scripts/node20-polyfills.mjs node_modules/vitest/vitest.mjs run --project unit "$@"
