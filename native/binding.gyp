{
  "targets": [
    {
      "target_name": "kernels",
      "sources": [
        "kernels.c"
      ],
      "cflags": [
        "-O3",
        "-ffp-contract=off",
        "-fno-math-errno",
        "-fno-trapping-math"
      ],
      "include_dirs": [
        "/usr/include/x86_64-linux-gnu",
        "/usr/include/aarch64-linux-gnu",
        "/usr/include/openblas"
      ],
      "libraries": [
        "-lopenblas",
        "-lm"
      ]
    }
  ]
}
