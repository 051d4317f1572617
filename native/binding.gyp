{
  "targets": [
    {
      "target_name": "gemm",
      "sources": ["gemm.c"],
      "cflags": ["-O2"],
      "include_dirs": ["/usr/include/x86_64-linux-gnu", "/usr/include/aarch64-linux-gnu", "/usr/include/openblas"],
      "libraries": ["-lopenblas"]
    }
  ]
}
