# SPDX-License-Identifier: MIT
# Evaluates the module with lib.evalModules alone, against stand-ins for the
# few NixOS options it sets (typed as NixOS types them, lists of systemd
# settings merged the NixOS way) and for the two things it takes from pkgs
# (writeText, coreutils). No nixpkgs package set and no store needed:
#
#   nix-instantiate --eval --strict --readonly-mode nixos-module/eval-test.nix \
#     --arg lib 'import /path/to/nixpkgs/lib'
#
# prints the names of the checks that passed, or fails naming one that did not.
# It does not replace evaluating a real NixOS system (see README.md).
{
  lib ? import <nixpkgs/lib>,
}:

let
  inherit (lib) mkOption types;

  # NixOS's systemd setting type: a value, or lists that concatenate.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge =
      loc: defs:
      let
        defs' = lib.filterOverrides defs;
      in
      if builtins.isList (lib.head defs').value then
        lib.concatMap (d: d.value) defs'
      else
        lib.mergeEqualOption loc defs';
  };
  unitCommon = {
    overrideStrategy = mkOption {
      type = types.enum [
        "asDropinIfExists"
        "asDropin"
      ];
      default = "asDropinIfExists";
    };
    wantedBy = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    unitConfig = mkOption {
      type = types.attrsOf unitOption;
      default = { };
    };
  };
  socketType = types.submodule {
    options = unitCommon // {
      listenStreams = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      listenDatagrams = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
    };
  };
  serviceType = types.submodule {
    options = unitCommon // {
      serviceConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
    };
  };
  anyList = mkOption {
    type = types.listOf types.anything;
    default = [ ];
  };

  nixosStandIn = {
    options = {
      assertions = anyList;
      warnings = anyList;
      environment.systemPackages = anyList;
      systemd.packages = anyList;
      systemd.sockets = mkOption {
        type = types.attrsOf socketType;
        default = { };
      };
      systemd.services = mkOption {
        type = types.attrsOf serviceType;
        default = { };
      };
      systemd.user.sockets = mkOption {
        type = types.attrsOf socketType;
        default = { };
      };
      systemd.user.services = mkOption {
        type = types.attrsOf serviceType;
        default = { };
      };
      users.users = mkOption {
        type = types.attrsOf (types.attrsOf types.anything);
        default = { };
      };
      users.groups = mkOption {
        type = types.attrsOf (types.attrsOf types.anything);
        default = { };
      };
      nix.settings.trusted-users = mkOption {
        type = types.listOf types.str;
        default = [ "root" ];
      };
      networking.firewall.allowedUDPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
      };
    };
  };

  package = {
    type = "derivation";
    name = "n2p-0.1.0";
    version = "0.1.0";
    outPath = "/nix/store/00000000000000000000000000000000-n2p-0.1.0";
  };
  longAddr = "n2p1aghjbvgqaq5z776c42zlekazeqz75n6q2usez7af7s4nk5skwn5xkaigp4aaaai6noyvshaa";
  shortAddr = "n2p1aahbntawkamxeolgzlsqauhevqbbvz5q6nm32tkvvgaefrtai2xoc3cklasa";

  # pkgs.writeText's path depends on the text, so a check can tell what was written.
  pkgs = {
    writeText =
      name: text: "${builtins.storeDir}/${builtins.substring 0 32 (builtins.hashString "sha256" text)}-${name}";
    coreutils = "${builtins.storeDir}/00000000000000000000000000000000-coreutils-9.1";
  };

  eval =
    n2p:
    (lib.evalModules {
      specialArgs = { inherit pkgs; };
      modules = [
        nixosStandIn
        ./default.nix
        { services.n2p = { inherit package; } // n2p; }
      ];
    }).config;

  failing = c: map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
  # The configuration is accepted, or refused with a message containing `text`.
  accepted = c: failing c == [ ];
  refused = text: c: lib.any (m: lib.hasInfix text m) (failing c);

  off = eval { };
  plain = eval { server.enable = true; };
  tuned = eval {
    server = {
      enable = true;
      port = 7800;
      openFirewall = true;
      secretKeyFile = "/run/keys/n2p.key";
      stun = "198.51.100.7:3478";
      extraArgs = [
        "--timeout"
        "3600"
      ];
    };
  };
  trusted = eval {
    server = {
      enable = true;
      nixTrusted = true;
    };
  };
  client = eval {
    clients.bob = {
      user = "alice";
      address = longAddr;
      extraArgs = [
        "--timeout"
        "600"
      ];
    };
  };
  tunedExec = lib.last tuned.systemd.services.n2p.serviceConfig.ExecStart;
  serverExec = c: lib.last c.systemd.services.n2p.serviceConfig.ExecStart;
  defaultKeyExec = "${package}/bin/n2pd --secret-key-file \${STATE_DIRECTORY}/secret.key";

  keysList = eval {
    server = {
      enable = true;
      authorizedKeys = [
        shortAddr
        "${longAddr} bob's desktop"
      ];
    };
  };
  keysFile = eval {
    server = {
      enable = true;
      authorizedKeysFile = "/etc/n2p/authorized-keys";
    };
  };
  keysRefused =
    text: keys:
    refused text (eval {
      server = {
        enable = true;
        authorizedKeys = keys;
      };
    });
  keysFileRefused =
    text: file:
    refused text (eval {
      server = {
        enable = true;
        authorizedKeysFile = file;
      };
    });
  # A value the option type refuses: evaluating it throws.
  notAType = c: !(builtins.tryEval (builtins.deepSeq c.services.n2p.server true)).success;

  rdvPlain = eval { rendezvous.enable = true; };
  rdvTuned = eval {
    rendezvous = {
      enable = true;
      port = 7790;
      openFirewall = true;
      turnSecretFile = "/run/keys/coturn-secret";
      extraArgs = [
        "--turn-lifetime"
        "600"
      ];
    };
  };
  bobSocket = client.systemd.user.sockets."n2p-client@bob";
  bobService = client.systemd.user.services."n2p-client@bob";

  checks = {
    off-sets-nothing = accepted off && off.systemd.packages == [ ] && off.systemd.sockets == { };
    server-uses-package-units = accepted plain && plain.systemd.packages == [ package ];
    server-socket-enabled = plain.systemd.sockets.n2p-server.wantedBy == [ "sockets.target" ];
    server-default-unchanged =
      plain.systemd.sockets.n2p-server.listenDatagrams == [ ]
      && !(plain.systemd.services ? n2p && plain.systemd.services.n2p.serviceConfig ? ExecStart)
      && plain.networking.firewall.allowedUDPPorts == [ ];
    server-port-replaces-unit-port = tuned.systemd.sockets.n2p-server.listenDatagrams == [
      ""
      "7800"
    ];
    server-firewall = tuned.networking.firewall.allowedUDPPorts == [ 7800 ];
    server-key-as-credential =
      accepted tuned
      && tuned.systemd.services.n2p.serviceConfig.LoadCredential == [ "secret.key:/run/keys/n2p.key" ];
    server-command-line =
      lib.head tuned.systemd.services.n2p.serviceConfig.ExecStart == ""
      &&
        tunedExec
        == "${package}/bin/n2pd --secret-key-file %d/secret.key \"--stun\" \"198.51.100.7:3478\" \"--timeout\" \"3600\"";
    server-args-escaped =
      lib.last
        (eval {
          server = {
            enable = true;
            extraArgs = [ "a b%$x\"" ];
          };
        }).systemd.services.n2p.serviceConfig.ExecStart
      == "${package}/bin/n2pd --secret-key-file \${STATE_DIRECTORY}/secret.key \"a b%%$$x\\\"\"";
    key-in-store-refused = refused "outside the Nix store" (eval {
      server = {
        enable = true;
        secretKeyFile = "${builtins.storeDir}/abc-key";
      };
    });
    key-relative-refused = refused "absolute path" (eval {
      server = {
        enable = true;
        secretKeyFile = "key";
      };
    });
    key-path-literal-refused =
      !(builtins.tryEval (builtins.deepSeq (eval {
        server = {
          enable = true;
          secretKeyFile = ./default.nix;
        };
      }).services.n2p.server.secretKeyFile true)).success;
    turn-and-rendezvous-passed =
      let
        c = eval {
          server = {
            enable = true;
            turn = "turn:u:p@198.51.100.7:3478";
            rendezvous = "203.0.113.5:7788";
          };
        };
      in
      accepted c
      && lib.last c.systemd.services.n2p.serviceConfig.ExecStart
        == "${package}/bin/n2pd --secret-key-file \${STATE_DIRECTORY}/secret.key \"--turn\" \"turn:u:p@198.51.100.7:3478\" \"--rendezvous\" \"203.0.113.5:7788\""
      && lib.length c.warnings == 1;
    turn-credentials-file-as-credential =
      let
        c = eval {
          server = {
            enable = true;
            turnCredentialsFile = "/run/keys/turn";
          };
        };
      in
      accepted c
      && c.warnings == [ ]
      && c.systemd.services.n2p.serviceConfig.LoadCredential == [ "turn:/run/keys/turn" ]
      && lib.hasSuffix " --turn-credentials-file %d/turn" (lib.last c.systemd.services.n2p.serviceConfig.ExecStart);
    turn-both-refused = refused "set turn or turnCredentialsFile, not both" (eval {
      server = {
        enable = true;
        turn = "turn:u:p@198.51.100.7:3478";
        turnCredentialsFile = "/run/keys/turn";
      };
    });
    authorized-keys-list-in-store =
      accepted keysList
      && serverExec keysList
        == "${defaultKeyExec} \"--authorized-keys\" \"${pkgs.writeText "n2p-authorized-keys" "${shortAddr}\n${longAddr} bob's desktop\n"}\""
      && !(keysList.systemd.services.n2p.serviceConfig ? LoadCredential)
      && !(keysList.systemd.services.n2p.serviceConfig ? ExecReload);
    authorized-keys-file-read-in-place =
      accepted keysFile
      && serverExec keysFile == "${defaultKeyExec} \"--authorized-keys\" \"/etc/n2p/authorized-keys\""
      && !(keysFile.systemd.services.n2p.serviceConfig ? LoadCredential);
    authorized-keys-file-reloads =
      keysFile.systemd.services.n2p.serviceConfig.ExecReload == "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
    authorized-keys-file-escaped =
      serverExec (eval {
        server = {
          enable = true;
          authorizedKeysFile = "/etc/n2p/keys %h$x";
        };
      }) == "${defaultKeyExec} \"--authorized-keys\" \"/etc/n2p/keys %%h$$x\"";
    authorized-keys-not-an-address-refused = keysRefused "each element must be one client's address" [
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"
    ];
    authorized-keys-comment-only-refused = keysRefused "each element must be one client's address" [
      "# alice"
    ];
    authorized-keys-line-break-refused = keysRefused "each element must be one client's address" [
      "${shortAddr}\n${longAddr}"
    ];
    authorized-keys-file-in-store-refused =
      keysFileRefused "outside the Nix store" "${builtins.storeDir}/abc-keys";
    authorized-keys-file-relative-refused = keysFileRefused "absolute path" "keys";
    authorized-keys-file-hidden-refused = keysFileRefused "n2p.service cannot see" "/home/alice/keys";
    authorized-keys-both-refused = refused "not both" (eval {
      server = {
        enable = true;
        authorizedKeys = [ "n2p1abc" ];
        authorizedKeysFile = "/etc/n2p/keys";
      };
    });
    trusted-needs-authorized-keys = refused "nixTrusted makes every peer a trusted Nix user" trusted;
    trusted-with-authorized-keys =
      accepted (eval {
        server = {
          enable = true;
          nixTrusted = true;
          authorizedKeys = [ shortAddr ];
        };
      })
      && accepted (eval {
        server = {
          enable = true;
          nixTrusted = true;
          authorizedKeysFile = "/etc/n2p/authorized-keys";
        };
      });
    trusted-static-user =
      trusted.users.users.n2p.isSystemUser
      && trusted.users.users.n2p.group == "n2p"
      && trusted.users.groups ? n2p
      && trusted.systemd.services.n2p.serviceConfig.DynamicUser == false
      && trusted.systemd.services.n2p.serviceConfig.User == "n2p"
      && lib.elem "n2p" trusted.nix.settings.trusted-users;
    untrusted-by-default = !(plain.users.users ? n2p) && plain.nix.settings.trusted-users == [ "root" ];
    limits-passed =
      let
        c = eval {
          server = {
            enable = true;
            maxSessions = 16;
            handshakeRate = 5;
          };
        };
      in
      accepted c && serverExec c == "${defaultKeyExec} \"--max-sessions\" \"16\" \"--handshake-rate\" \"5\"";
    limits-out-of-range-refused =
      notAType (eval {
        server = {
          enable = true;
          maxSessions = 0;
        };
      })
      && notAType (eval {
        server = {
          enable = true;
          handshakeRate = 10001;
        };
      });
    rendezvous-uses-package-units =
      accepted rdvPlain
      && rdvPlain.systemd.packages == [ package ]
      && rdvPlain.systemd.sockets.n2p-rendezvous.wantedBy == [ "sockets.target" ]
      && !(rdvPlain.systemd.sockets ? n2p-server);
    rendezvous-default-unchanged =
      rdvPlain.systemd.sockets.n2p-rendezvous.listenDatagrams == [ ]
      && !(rdvPlain.systemd.services ? n2p-rendezvous && rdvPlain.systemd.services.n2p-rendezvous.serviceConfig != { })
      && rdvPlain.networking.firewall.allowedUDPPorts == [ ];
    rendezvous-port-replaces-unit-port =
      rdvTuned.systemd.sockets.n2p-rendezvous.listenDatagrams == [
        ""
        "7790"
      ]
      && rdvTuned.networking.firewall.allowedUDPPorts == [ 7790 ];
    rendezvous-turn-secret-as-credential =
      accepted rdvTuned
      && rdvTuned.systemd.services.n2p-rendezvous.serviceConfig.LoadCredential == [
        "turn-secret:/run/keys/coturn-secret"
      ]
      && rdvTuned.systemd.services.n2p-rendezvous.serviceConfig.ExecStart == [
        ""
        "${package}/bin/n2p-rendezvous --turn-secret-file %d/turn-secret \"--turn-lifetime\" \"600\""
      ];
    rendezvous-secret-in-store-refused = refused "outside the Nix store" (eval {
      rendezvous = {
        enable = true;
        turnSecretFile = "${builtins.storeDir}/abc-secret";
      };
    });
    server-and-rendezvous-firewall =
      (eval {
        server = {
          enable = true;
          openFirewall = true;
        };
        rendezvous = {
          enable = true;
          openFirewall = true;
        };
      }).networking.firewall.allowedUDPPorts == [
        7787
        7788
      ];
    client-accepted = accepted client && client.systemd.packages == [ package ];
    client-socket-for-its-user =
      bobSocket.overrideStrategy == "asDropin"
      && bobSocket.wantedBy == [ "sockets.target" ]
      && bobSocket.unitConfig.ConditionUser == "alice"
      && bobSocket.listenStreams == [ ];
    client-service-environment =
      bobService.overrideStrategy == "asDropin"
      && bobService.serviceConfig.EnvironmentFile == [ "" ]
      && bobService.serviceConfig.Environment == [
        "\"ADDRESS=${longAddr}\""
        "\"OPTIONS=--timeout 600\""
      ];
    client-socket-path =
      (eval {
        clients.bob = {
          user = "alice";
          address = longAddr;
          socket = "%t/peers/bob.sock";
        };
      }).systemd.user.sockets."n2p-client@bob".listenStreams == [
        ""
        "%t/peers/bob.sock"
      ];
    client-short-address-refused = refused "is a short address" (eval {
      clients.bob = {
        user = "alice";
        address = lib.substring 0 64 longAddr;
      };
    });
    client-bad-address-refused = refused "is not an n2p address" (eval {
      clients.bob = {
        user = "alice";
        address = "ssh://bob";
      };
    });
    client-bad-name-refused = refused "the name must be" (eval {
      clients."bob/x" = {
        user = "alice";
        address = longAddr;
      };
    });
    client-spaced-arg-refused = refused "without white space" (eval {
      clients.bob = {
        user = "alice";
        address = longAddr;
        extraArgs = [ "--timeout 600" ];
      };
    });
  };

  failed = lib.attrNames (lib.filterAttrs (_: ok: !ok) checks);
in
if failed == [ ] then
  lib.attrNames checks
else
  throw "nixos-module/eval-test.nix: failed: ${lib.concatStringsSep ", " failed}"
