{
  "targets": [
    {
      "target_name": "peercloud_seal",
      "sources": ["src/peer/seal-addon.cc"],
      "cflags_cc": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
