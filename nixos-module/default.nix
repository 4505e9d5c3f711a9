# SPDX-License-Identifier: MIT
# services.n2p: the n2p node (server), named peers as socket-activated user
# units (clients), and the rendezvous service. It configures the project's own
# units from the package (systemd.packages) with drop-ins; see README.md.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    any
    attrNames
    concatMap
    concatStringsSep
    hasPrefix
    literalExpression
    mapAttrs'
    mkIf
    mkMerge
    mkOption
    nameValuePair
    optional
    optionals
    types
    ;

  cfg = config.services.n2p;
  srv = cfg.server;
  rdv = cfg.rendezvous;

  defaultPort = 7787;
  defaultRendezvousPort = 7788;

  # One ExecStart= argument: quoted, and with systemd's own expansions ($VAR,
  # %specifier) escaped so a value means exactly itself.
  execArg = s: builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON s);

  # One Environment= assignment: quoted; only specifiers are expanded there.
  envAssignment = name: value: builtins.replaceStrings [ "%" ] [ "%%" ] (builtins.toJSON "${name}=${value}");

  # A runtime path: a string, so that a path literal (which Nix would copy into
  # the world-readable store) is a type error rather than a leaked secret.
  secretPath = types.nullOr types.str;
  outsideStore = p: p == null || (hasPrefix "/" p && !hasPrefix "${builtins.storeDir}/" p);

  hasAuthorizedKeys = srv.authorizedKeys != [ ] || srv.authorizedKeysFile != null;

  # Public keys: the store is the right place for a fixed list.
  authorizedKeysText = concatStringsSep "\n" srv.authorizedKeys + "\n";
  authorizedKeysPath =
    if srv.authorizedKeys != [ ] then
      "${pkgs.writeText "n2p-authorized-keys" authorizedKeysText}"
    else
      srv.authorizedKeysFile;
  # n2p.service cannot see these (ProtectHome=, PrivateTmp=).
  hiddenDirs = [
    "/home/"
    "/root/"
    "/run/user/"
    "/tmp/"
    "/var/tmp/"
  ];
  visibleToServer = p: p == null || !any (d: hasPrefix d p) hiddenDirs;

  # n2pd's command line when the unit's own one is not enough. The key is
  # handed over as a credential: the service's user, dynamic or static, can
  # read it while the file itself stays root's.
  serverArgs =
    optionals (srv.stun != null) [
      "--stun"
      srv.stun
    ]
    ++ optionals (srv.turn != null) [
      "--turn"
      srv.turn
    ]
    ++ optionals (srv.rendezvous != null) [
      "--rendezvous"
      srv.rendezvous
    ]
    # Not a credential: LoadCredential= copies the file once at start, and
    # SIGHUP (`systemctl reload n2p`) must reread the file itself.
    ++ optionals hasAuthorizedKeys [
      "--authorized-keys"
      authorizedKeysPath
    ]
    ++ optionals (srv.maxSessions != null) [
      "--max-sessions"
      (toString srv.maxSessions)
    ]
    ++ optionals (srv.handshakeRate != null) [
      "--handshake-rate"
      (toString srv.handshakeRate)
    ]
    ++ srv.extraArgs;
  keyArg =
    if srv.secretKeyFile != null then
      "%d/secret.key"
    else
      "\${STATE_DIRECTORY}/secret.key";
  # Credentials are passed as specifiers, which execArg would escape.
  credentialArgs = optional (srv.turnCredentialsFile != null) "--turn-credentials-file %d/turn";
  overrideExecStart = srv.secretKeyFile != null || serverArgs != [ ] || credentialArgs != [ ];

  rendezvousCredentialArgs = optional (rdv.turnSecretFile != null) "--turn-secret-file %d/turn-secret";
  overrideRendezvousExecStart = rendezvousCredentialArgs != [ ] || rdv.extraArgs != [ ];

  clientModule =
    { name, ... }:
    {
      options = {
        address = mkOption {
          type = types.str;
          example = "n2p1aghjbvgqaq5z776c42zlekazeqz75n6q2usez7af7s4nk5skwn5xkaigp4aaaai6noyvshaa";
          description = ''
            The peer's long address, as `n2pctl address` prints it on the peer
            (a short address cannot be resolved yet).
          '';
        };
        user = mkOption {
          type = types.str;
          example = "alice";
          description = ''
            The user whose systemd user manager serves this peer: the socket is
            in that user's runtime directory and the session uses that user's
            n2p key (`~/.local/state/n2p/secret.key`, created on first use).
          '';
        };
        socket = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "%t/nix-peers/${name}.sock";
          description = ''
            Where the user's store socket for this peer listens; systemd
            specifiers are allowed (`%t` is the user's runtime directory).
            `null` keeps the unit's `%t/n2p/${name}.sock`, so that
            `nix copy --to unix://$XDG_RUNTIME_DIR/n2p/${name}.sock` works.
          '';
        };
        extraArgs = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [
            "--timeout"
            "600"
          ];
          description = ''
            Further options of `n2pctl connect`. Each must be one word: the unit
            passes them through `$OPTIONS`, which systemd splits at white space.
          '';
        };
      };
    };

  clientNames = attrNames cfg.clients;
  clientUnitName = name: "n2p-client@${name}";
in
{
  options.services.n2p = {
    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ../package.nix { };
      defaultText = literalExpression "pkgs.callPackage <n2p>/package.nix { }";
      description = "The n2p package whose programs and units are used.";
    };

    server = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Whether to share this machine's nix-daemon with peers: the socket
          unit `n2p-server.socket` is started at boot and starts `n2p.service`
          (n2pd) on a peer's first datagram. The node's addresses are in
          `journalctl -u n2p`.
        '';
      };
      port = mkOption {
        type = types.port;
        default = defaultPort;
        description = "The UDP port on which peers' handshakes arrive.";
      };
      openFirewall = mkOption {
        type = types.bool;
        default = false;
        description = "Whether to open {option}`services.n2p.server.port` (UDP) in the firewall.";
      };
      secretKeyFile = mkOption {
        type = secretPath;
        default = null;
        example = "/run/keys/n2p.key";
        description = ''
          The node's identity: 32 raw bytes (an Ed25519 seed), read at run
          time and never copied into the Nix store. `null`: a key is created
          on first start in the service's state directory and kept there.
        '';
      };
      authorizedKeys = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "n2p1aahbntawkamxeolgzlsqauhevqbbvz5q6nm32tkvvgaefrtai2xoc3cklasa alice laptop" ];
        description = ''
          The only client keys allowed to connect: each element one client's
          address as `n2pctl key` prints it on the client, optionally followed
          by a space and a comment. They become a file in the Nix store (the
          keys are public) passed as n2pd's `--authorized-keys`. Empty (and
          no {option}`services.n2p.server.authorizedKeysFile`): any key is
          accepted, and every client's key is logged.
        '';
      };
      authorizedKeysFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/etc/n2p/authorized-keys";
        description = ''
          As {option}`services.n2p.server.authorizedKeys`, from a file kept
          outside the Nix store and read by n2pd itself (one key per line,
          `#` comment lines), so that it can be edited without a rebuild:
          `systemctl reload n2p` makes n2pd reread it (a malformed file is
          refused whole and the previous list stays in force). The service's
          user must be able to read it: the keys are public, so mode 0644 is
          right. Not under /home, /root, /run/user, /tmp or /var/tmp, which
          the service's sandbox hides.
        '';
      };
      stun = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "198.51.100.7:3478";
        description = ''
          A STUN server, HOST:PORT with a numeric host, from which the node
          learns its public (server-reflexive) UDP endpoint.
        '';
      };
      turn = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "turn:user:pass@198.51.100.7:3478";
        description = ''
          A TURN server for relayed candidates, `turn:USER:PASS@HOST:PORT`
          (numeric host). The password ends up in the world-readable Nix
          store: prefer {option}`services.n2p.server.turnCredentialsFile`.
        '';
      };
      turnCredentialsFile = mkOption {
        type = secretPath;
        default = null;
        example = "/run/keys/n2p-turn";
        description = ''
          As {option}`services.n2p.server.turn`, read at run time from this
          file (its first non-comment line), which stays out of the store.
        '';
      };
      rendezvous = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "203.0.113.5:7788";
        description = ''
          A rendezvous service, HOST:PORT, with which the node registers so
          that peers behind NATs reach it by its key.
        '';
      };
      maxSessions = mkOption {
        type = types.nullOr (types.ints.between 1 4096);
        default = null;
        example = 16;
        description = "How many peer sessions n2pd serves at once (`--max-sessions`); `null`: n2pd's default (64).";
      };
      handshakeRate = mkOption {
        type = types.nullOr (types.ints.between 1 10000);
        default = null;
        example = 5;
        description = ''
          How many handshakes per second n2pd answers from one source address
          (`--handshake-rate`, bursts of twice that); `null`: n2pd's default (10).
        '';
      };
      nixTrusted = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Whether peers get nix-daemon's trust. By default they reach the
          daemon as an unprivileged dynamic user, an untrusted Nix user whose
          paths must be signed or content-addressed. With this option the
          service runs as the static system user `n2p`, which is added to
          {option}`nix.settings.trusted-users`: a peer can then import
          anything, which is as good as root. So this also requires
          {option}`services.n2p.server.authorizedKeys` (or
          {option}`services.n2p.server.authorizedKeysFile`, which the user
          `n2p` must then be able to read).
        '';
      };
      extraArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [
          "--timeout"
          "3600"
        ];
        description = "Further n2pd options, appended to its command line (each element one argument).";
      };
    };

    clients = mkOption {
      type = types.attrsOf (types.submodule clientModule);
      default = { };
      example = literalExpression ''
        {
          bob = {
            user = "alice";
            address = "n2p1aghjb…";   # bob's long address
          };
        }
      '';
      description = ''
        Named peers. Each becomes the user units `n2p-client@NAME.socket`
        (enabled for {option}`user` only) and `n2p-client@NAME.service`:
        the first connection to the socket starts `n2pctl connect`, so
        `nix copy --to unix://$XDG_RUNTIME_DIR/n2p/NAME.sock ./result` just
        works after login.
      '';
    };

    rendezvous = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Whether to run an n2p rendezvous service (n2p-rendezvous), through
          which nodes that are both behind NAT find each other: the package's
          `n2p-rendezvous.socket` is started at boot and starts
          `n2p-rendezvous.service` on the first datagram. Nodes name it with
          {option}`services.n2p.server.rendezvous` (HOST:PORT).
        '';
      };
      port = mkOption {
        type = types.port;
        default = defaultRendezvousPort;
        description = "The UDP port of the rendezvous service.";
      };
      openFirewall = mkOption {
        type = types.bool;
        default = false;
        description = "Whether to open {option}`services.n2p.rendezvous.port` (UDP) in the firewall.";
      };
      turnSecretFile = mkOption {
        type = secretPath;
        default = null;
        example = "/run/keys/coturn-secret";
        description = ''
          The secret shared with a coturn server (its `static-auth-secret`,
          with `use-auth-secret`), one line, read at run time and never
          copied into the Nix store; it reaches the service with
          `LoadCredential=`. With it, registered nodes and clients get
          time-limited TURN credentials. `null`: they get none.
        '';
      };
      extraArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [
          "--turn-lifetime"
          "600"
        ];
        description = "Further n2p-rendezvous options, appended to its command line (each element one argument).";
      };
    };
  };

  config = mkMerge [
    {
      assertions =
        let
          noStore = opt: value: {
            assertion = outsideStore value;
            message = "services.n2p.${opt} must be an absolute path outside the Nix store (the store is world-readable), not ${toString value}.";
          };
        in
        optionals srv.enable (
          map (k: {
            # A line break would smuggle in further lines, a lone comment admits nobody.
            assertion = builtins.match "n2p1[a-z2-7]+([ \t][^\n\r]*)?" k != null;
            message = "services.n2p.server.authorizedKeys: each element must be one client's address (n2p1..., as `n2pctl key` prints it), optionally followed by a space and a comment, on one line: ${builtins.toJSON k}";
          }) srv.authorizedKeys
          ++ [
            {
              assertion = !(srv.authorizedKeys != [ ] && srv.authorizedKeysFile != null);
              message = "services.n2p.server: set authorizedKeys or authorizedKeysFile, not both.";
            }
            {
              assertion = srv.turn == null || srv.turnCredentialsFile == null;
              message = "services.n2p.server: set turn or turnCredentialsFile, not both (the file holds the same turn:USER:PASS@HOST:PORT).";
            }
            {
              assertion = !srv.nixTrusted || hasAuthorizedKeys;
              message = "services.n2p.server.nixTrusted makes every peer a trusted Nix user (it can import unsigned paths: as good as root), so it needs server.authorizedKeys or server.authorizedKeysFile to say which peers.";
            }
            (noStore "server.secretKeyFile" srv.secretKeyFile)
            (noStore "server.turnCredentialsFile" srv.turnCredentialsFile)
            {
              assertion = outsideStore srv.authorizedKeysFile;
              message = "services.n2p.server.authorizedKeysFile must be an absolute path outside the Nix store (a file there never changes: use server.authorizedKeys for a fixed list), not ${toString srv.authorizedKeysFile}.";
            }
            {
              assertion = visibleToServer srv.authorizedKeysFile;
              message = "services.n2p.server.authorizedKeysFile: n2p.service cannot see ${toString srv.authorizedKeysFile} (its sandbox hides ${concatStringsSep ", " hiddenDirs}); put the file under /etc or /var/lib, for example.";
            }
          ]
        )
        ++ optionals rdv.enable [
          (noStore "rendezvous.turnSecretFile" rdv.turnSecretFile)
        ]
        ++ concatMap (
          name:
          let
            c = cfg.clients.${name};
            opt = "services.n2p.clients.${name}";
          in
          [
            {
              assertion = builtins.match "[A-Za-z0-9_.-]+" name != null;
              message = "${opt}: the name must be letters, digits, '_', '.' or '-' (it names the units n2p-client@NAME and the socket NAME.sock).";
            }
            {
              assertion = builtins.match "n2p1[a-z2-7]+" c.address != null;
              message = "${opt}.address is not an n2p address (n2p1 followed by lower-case base32): ${c.address}";
            }
            {
              assertion = builtins.stringLength c.address > 64;
              message = "${opt}.address is a short address; n2pctl connect needs the peer's long address (the 'long address:' line of `n2pctl address` on the peer).";
            }
            {
              assertion = c.user != "";
              message = "${opt}.user must name the user whose session serves the peer.";
            }
            {
              assertion = c.socket == null || hasPrefix "/" c.socket || hasPrefix "%" c.socket;
              message = "${opt}.socket must be an absolute path (systemd specifiers such as %t allowed): ${toString c.socket}";
            }
            {
              assertion = !any (a: builtins.match ".*[[:space:]].*" a != null || a == "") c.extraArgs;
              message = "${opt}.extraArgs: each element must be one non-empty word without white space (systemd splits $OPTIONS at white space).";
            }
          ]
        ) clientNames;
      warnings = optional (srv.enable && srv.turn != null) "services.n2p.server.turn puts the TURN password into the world-readable Nix store; services.n2p.server.turnCredentialsFile keeps it out.";
    }

    (mkIf (srv.enable || rdv.enable || cfg.clients != { }) {
      # The units are the package's own; everything below is a drop-in.
      systemd.packages = [ cfg.package ];
      environment.systemPackages = [ cfg.package ];
    })

    (mkIf srv.enable {
      # NixOS ignores [Install]; this is what `systemctl enable` would do.
      systemd.sockets.n2p-server = {
        wantedBy = [ "sockets.target" ];
        listenDatagrams = mkIf (srv.port != defaultPort) [
          "" # drop the unit's own port
          (toString srv.port)
        ];
      };

      systemd.services.n2p = mkMerge [
        (mkIf overrideExecStart {
          serviceConfig.ExecStart = [
            "" # replace the unit's command line, not add a second one
            (concatStringsSep " " (
              [
                "${cfg.package}/bin/n2pd"
                "--secret-key-file"
                keyArg
              ]
              ++ map execArg serverArgs
              ++ credentialArgs
            ))
          ];
        })
        (mkIf (srv.secretKeyFile != null) {
          serviceConfig.LoadCredential = [ "secret.key:${srv.secretKeyFile}" ];
        })
        (mkIf (srv.turnCredentialsFile != null) {
          serviceConfig.LoadCredential = [ "turn:${srv.turnCredentialsFile}" ];
        })
        (mkIf (srv.authorizedKeysFile != null) {
          # n2pd rereads --authorized-keys on SIGHUP; the unit has no ExecReload=.
          serviceConfig.ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
        })
        (mkIf srv.nixTrusted {
          # trusted-users needs a name that exists while nix-daemon checks it,
          # so not a dynamic user. The state directory moves from
          # /var/lib/private/n2p to /var/lib/n2p by itself, keeping the key.
          serviceConfig = {
            DynamicUser = false;
            User = "n2p";
            Group = "n2p";
          };
        })
      ];

      users.users = mkIf srv.nixTrusted {
        n2p = {
          isSystemUser = true;
          group = "n2p";
          description = "n2p node (a trusted Nix user)";
        };
      };
      users.groups = mkIf srv.nixTrusted { n2p = { }; };
      nix.settings.trusted-users = mkIf srv.nixTrusted [ "n2p" ];

      networking.firewall.allowedUDPPorts = mkIf srv.openFirewall [ srv.port ];
    })

    (mkIf rdv.enable {
      systemd.sockets.n2p-rendezvous = {
        wantedBy = [ "sockets.target" ];
        listenDatagrams = mkIf (rdv.port != defaultRendezvousPort) [
          "" # drop the unit's own port
          (toString rdv.port)
        ];
      };

      # As n2p-rendezvous(8) shows: the secret as a credential, readable by
      # the dynamic user alone, named through %d (the credentials directory).
      systemd.services.n2p-rendezvous = mkMerge [
        (mkIf overrideRendezvousExecStart {
          serviceConfig.ExecStart = [
            ""
            (concatStringsSep " " (
              [ "${cfg.package}/bin/n2p-rendezvous" ] ++ rendezvousCredentialArgs ++ map execArg rdv.extraArgs
            ))
          ];
        })
        (mkIf (rdv.turnSecretFile != null) {
          serviceConfig.LoadCredential = [ "turn-secret:${rdv.turnSecretFile}" ];
        })
      ];

      networking.firewall.allowedUDPPorts = mkIf rdv.openFirewall [ rdv.port ];
    })

    (mkIf (cfg.clients != { }) {
      # Drop-ins for instances of the package's template user units. User
      # units are shared by every user, so each is limited to its user.
      systemd.user.sockets = mapAttrs' (
        name: c:
        nameValuePair (clientUnitName name) {
          overrideStrategy = "asDropin";
          wantedBy = [ "sockets.target" ];
          unitConfig.ConditionUser = c.user;
          listenStreams = mkIf (c.socket != null) [
            ""
            c.socket
          ];
        }
      ) cfg.clients;

      systemd.user.services = mapAttrs' (
        name: c:
        nameValuePair (clientUnitName name) {
          overrideStrategy = "asDropin";
          unitConfig.ConditionUser = c.user;
          serviceConfig = {
            # The address comes from here, not from ~/.config/n2p/peers/NAME.env.
            EnvironmentFile = [ "" ];
            Environment = [
              (envAssignment "ADDRESS" c.address)
            ]
            ++ optional (c.extraArgs != [ ]) (envAssignment "OPTIONS" (concatStringsSep " " c.extraArgs));
          };
        }
      ) cfg.clients;
    })
  ];
}
