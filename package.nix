# SPDX-License-Identifier: MIT
# n2p for nixpkgs, callPackage style: `pkgs.callPackage ./package.nix { }`.
{
  lib,
  stdenv,
  meson,
  ninja,
  pkg-config,
  scdoc,
  glib,
  json-glib,
  libnice,
  libsodium,
  systemd,
  qrencode,
  withQrencode ? true,
}:

stdenv.mkDerivation {
  pname = "n2p";
  version = "0.1.0";

  # The checkout without .git, build directories and `result` links.
  src = lib.cleanSourceWith {
    src = lib.cleanSource ./.;
    filter = path: type: !(type == "directory" && lib.hasPrefix "build" (baseNameOf path));
  };

  nativeBuildInputs = [
    meson
    ninja
    pkg-config
    scdoc
  ];

  buildInputs = [
    glib
    json-glib # the Noise vectors checker, built with the tests
    libnice
    libsodium
    systemd # libsystemd; systemd.pc is only read for the unit directories
  ]
  ++ lib.optional withQrencode qrencode; # `n2pctl address --qr`

  mesonFlags = [ (lib.mesonEnable "man" true) ];

  # The scripts under tests/ start with #!/usr/bin/env, absent in the sandbox.
  postPatch = ''
    patchShebangs tests
  '';

  # The e2e suite needs root, namespaces and real daemons: only the unit suite
  # runs here (without nix-instantiate, zsh or bash-completion, the scripts
  # that need them skip those checks).
  doCheck = true;
  mesonCheckFlags = [
    "--suite"
    "unit"
  ];

  meta = {
    description = "Share Nix daemons between two peers, end-to-end encrypted, through NATs";
    longDescription = ''
      `nix copy --to unix:/…/peer.sock ./result` lands a closure in a peer's
      store: ICE (libnice) through NATs, Noise_IK_25519_ChaChaPoly_BLAKE2b
      (libsodium) end to end, socket-activated systemd units on both sides.
    '';
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
    mainProgram = "n2pctl";
  };
}
