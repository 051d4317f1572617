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
        "-fno-math-errno"
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
