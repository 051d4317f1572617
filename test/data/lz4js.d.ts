/** Types for lz4js (no bundled types): the LZ4 frame compressor the rosbag2-style fixture uses. */
declare module "lz4js" {
  export function compress(data: Uint8Array, maxSize?: number): Uint8Array;
  export function decompress(data: Uint8Array, maxSize?: number): Uint8Array;
  const lz4: { compress: typeof compress; decompress: typeof decompress };
  export default lz4;
}
