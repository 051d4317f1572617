/**
 * What a WebGPU adapter says of itself (GPUAdapterInfo), in the form the log and the learner's
 * backend selection report it. No tfjs here: the control thread formats it without loading the
 * learner's libraries.
 */

/** What a GPU adapter says of itself (WebGPU's GPUAdapterInfo), for the log. */
export interface GpuAdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU implementation of the API (lavapipe, SwiftShader), not a GPU. */
  software: boolean;
}

/**
 * The adapter in a few words, as it names itself: "nvidia ampere: NVIDIA GeForce RTX 3060",
 * "mesa software: llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)".
 */
export function describeAdapter(adapter: GpuAdapterDescription): string {
  const what = [adapter.vendor, adapter.architecture].filter(Boolean).join(" ") || "unnamed adapter";
  const detail = adapter.description || adapter.device;
  return detail ? `${what}: ${detail}` : what;
}

/** Reads GPUAdapterInfo's fields; a software adapter is one that says so or is a known CPU one. */
export function adapterDescription(info: Record<string, unknown>): GpuAdapterDescription {
  const text = (key: string) => (typeof info[key] === "string" ? (info[key] as string) : "");
  const [vendor, architecture, device, description] = ["vendor", "architecture", "device", "description"].map(
    text,
  );
  const software =
    info.isFallbackAdapter === true ||
    architecture === "software" ||
    /llvmpipe|lavapipe|swiftshader|softpipe/i.test(`${device} ${description}`);
  return { vendor, architecture, device, description, software };
}
