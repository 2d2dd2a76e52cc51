//! Which `[Section]`s and keys systemd 257 reads for each unit type. A key
//! systemd does not know for that section is only a warning in its journal
//! and is otherwise ignored, so a typo such as `Restart=` under `[Unit]`
//! would silently leave a service without restarts. archy refuses it.

const UNIT: &[&str] = &[
    "Description",
    "Documentation",
    "Wants",
    "Requires",
    "Requisite",
    "BindsTo",
    "PartOf",
    "Upholds",
    "Conflicts",
    "Before",
    "After",
    "OnFailure",
    "OnSuccess",
    "PropagatesReloadTo",
    "ReloadPropagatedFrom",
    "PropagatesStopTo",
    "StopPropagatedFrom",
    "JoinsNamespaceOf",
    "RequiresMountsFor",
    "WantsMountsFor",
    "OnFailureJobMode",
    "IgnoreOnIsolate",
    "StopWhenUnneeded",
    "RefuseManualStart",
    "RefuseManualStop",
    "AllowIsolate",
    "DefaultDependencies",
    "SurviveFinalKillSignal",
    "CollectMode",
    "FailureAction",
    "SuccessAction",
    "FailureActionExitStatus",
    "SuccessActionExitStatus",
    "JobTimeoutSec",
    "JobRunningTimeoutSec",
    "JobTimeoutAction",
    "JobTimeoutRebootArgument",
    "StartLimitIntervalSec",
    "StartLimitBurst",
    "StartLimitAction",
    "RebootArgument",
    "SourcePath",
];

/// `Condition…=` and `Assert…=` share these suffixes.
const CONDITIONS: &[&str] = &[
    "Architecture",
    "Firmware",
    "Virtualization",
    "Host",
    "KernelCommandLine",
    "KernelVersion",
    "Credential",
    "Environment",
    "Security",
    "Capability",
    "ACPower",
    "NeedsUpdate",
    "FirstBoot",
    "PathExists",
    "PathExistsGlob",
    "PathIsDirectory",
    "PathIsSymbolicLink",
    "PathIsMountPoint",
    "PathIsReadWrite",
    "PathIsEncrypted",
    "DirectoryNotEmpty",
    "FileNotEmpty",
    "FileIsExecutable",
    "User",
    "Group",
    "ControlGroupController",
    "Memory",
    "CPUs",
    "CPUFeature",
    "OSRelease",
    "MemoryPressure",
    "CPUPressure",
    "IOPressure",
];

const INSTALL: &[&str] = &[
    "Alias",
    "WantedBy",
    "RequiredBy",
    "UpheldBy",
    "Also",
    "DefaultInstance",
];

const SERVICE: &[&str] = &[
    "Type",
    "ExitType",
    "RemainAfterExit",
    "GuessMainPID",
    "PIDFile",
    "BusName",
    "ExecStart",
    "ExecStartPre",
    "ExecStartPost",
    "ExecCondition",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
    "RestartSec",
    "RestartSteps",
    "RestartMaxDelaySec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "TimeoutAbortSec",
    "TimeoutSec",
    "TimeoutStartFailureMode",
    "TimeoutStopFailureMode",
    "RuntimeMaxSec",
    "RuntimeRandomizedExtraSec",
    "WatchdogSec",
    "Restart",
    "RestartMode",
    "SuccessExitStatus",
    "RestartPreventExitStatus",
    "RestartForceExitStatus",
    "RootDirectoryStartOnly",
    "NonBlocking",
    "NotifyAccess",
    "Sockets",
    "FileDescriptorStoreMax",
    "FileDescriptorStorePreserve",
    "USBFunctionDescriptors",
    "USBFunctionStrings",
    "OOMPolicy",
    "OpenFile",
    "ReloadSignal",
];

const TIMER: &[&str] = &[
    "OnActiveSec",
    "OnBootSec",
    "OnStartupSec",
    "OnUnitActiveSec",
    "OnUnitInactiveSec",
    "OnCalendar",
    "AccuracySec",
    "RandomizedDelaySec",
    "RandomizedOffsetSec",
    "FixedRandomDelay",
    "DeferReactivation",
    "OnClockChange",
    "OnTimezoneChange",
    "Unit",
    "Persistent",
    "WakeSystem",
    "RemainAfterElapse",
];

const SOCKET: &[&str] = &[
    "ListenStream",
    "ListenDatagram",
    "ListenSequentialPacket",
    "ListenFIFO",
    "ListenSpecial",
    "ListenNetlink",
    "ListenMessageQueue",
    "ListenUSBFunction",
    "SocketProtocol",
    "BindIPv6Only",
    "Backlog",
    "BindToDevice",
    "SocketUser",
    "SocketGroup",
    "SocketMode",
    "DirectoryMode",
    "Accept",
    "Writable",
    "FlushPending",
    "MaxConnections",
    "MaxConnectionsPerSource",
    "KeepAlive",
    "KeepAliveTimeSec",
    "KeepAliveIntervalSec",
    "KeepAliveProbes",
    "NoDelay",
    "Priority",
    "DeferAcceptSec",
    "ReceiveBuffer",
    "SendBuffer",
    "IPTOS",
    "IPTTL",
    "Mark",
    "ReusePort",
    "SmackLabel",
    "SmackLabelIPIn",
    "SmackLabelIPOut",
    "SELinuxContextFromNet",
    "PipeSize",
    "MessageQueueMaxMessages",
    "MessageQueueMessageSize",
    "FreeBind",
    "Transparent",
    "Broadcast",
    "PassCredentials",
    "PassSecurity",
    "PassPacketInfo",
    "Timestamping",
    "TCPCongestion",
    "ExecStartPre",
    "ExecStartPost",
    "ExecStopPre",
    "ExecStopPost",
    "TimeoutSec",
    "Service",
    "RemoveOnStop",
    "Symlinks",
    "FileDescriptorName",
    "TriggerLimitIntervalSec",
    "TriggerLimitBurst",
    "PollLimitIntervalSec",
    "PollLimitBurst",
    "PassFileDescriptorsToExec",
    "DeferTrigger",
    "DeferTriggerMaxSec",
];

const PATH: &[&str] = &[
    "PathExists",
    "PathExistsGlob",
    "PathChanged",
    "PathModified",
    "DirectoryNotEmpty",
    "Unit",
    "MakeDirectory",
    "DirectoryMode",
    "TriggerLimitIntervalSec",
    "TriggerLimitBurst",
];

const MOUNT: &[&str] = &[
    "What",
    "Where",
    "Type",
    "Options",
    "SloppyOptions",
    "LazyUnmount",
    "ReadWriteOnly",
    "ForceUnmount",
    "DirectoryMode",
    "TimeoutSec",
];

const AUTOMOUNT: &[&str] = &["Where", "ExtraOptions", "DirectoryMode", "TimeoutIdleSec"];

const SWAP: &[&str] = &["What", "Priority", "Options", "TimeoutSec"];

/// systemd.exec(5): the execution environment of services, sockets, mounts
/// and swaps.
const EXEC: &[&str] = &[
    "ExecSearchPath",
    "WorkingDirectory",
    "RootDirectory",
    "RootImage",
    "RootImageOptions",
    "RootEphemeral",
    "RootHash",
    "RootHashSignature",
    "RootVerity",
    "RootImagePolicy",
    "MountImagePolicy",
    "ExtensionImagePolicy",
    "MountAPIVFS",
    "BindLogSockets",
    "ProtectProc",
    "ProcSubset",
    "BindPaths",
    "BindReadOnlyPaths",
    "MountImages",
    "ExtensionImages",
    "ExtensionDirectories",
    "User",
    "Group",
    "DynamicUser",
    "SupplementaryGroups",
    "SetLoginEnvironment",
    "PAMName",
    "CapabilityBoundingSet",
    "AmbientCapabilities",
    "NoNewPrivileges",
    "SecureBits",
    "SELinuxContext",
    "AppArmorProfile",
    "SmackProcessLabel",
    "LimitCPU",
    "LimitFSIZE",
    "LimitDATA",
    "LimitSTACK",
    "LimitCORE",
    "LimitRSS",
    "LimitNOFILE",
    "LimitAS",
    "LimitNPROC",
    "LimitMEMLOCK",
    "LimitLOCKS",
    "LimitSIGPENDING",
    "LimitMSGQUEUE",
    "LimitNICE",
    "LimitRTPRIO",
    "LimitRTTIME",
    "UMask",
    "CoredumpFilter",
    "KeyringMode",
    "OOMScoreAdjust",
    "TimerSlackNSec",
    "Personality",
    "IgnoreSIGPIPE",
    "Nice",
    "CPUSchedulingPolicy",
    "CPUSchedulingPriority",
    "CPUSchedulingResetOnFork",
    "CPUAffinity",
    "NUMAPolicy",
    "NUMAMask",
    "IOSchedulingClass",
    "IOSchedulingPriority",
    "ProtectSystem",
    "ProtectHome",
    "RuntimeDirectory",
    "StateDirectory",
    "CacheDirectory",
    "LogsDirectory",
    "ConfigurationDirectory",
    "RuntimeDirectoryMode",
    "StateDirectoryMode",
    "CacheDirectoryMode",
    "LogsDirectoryMode",
    "ConfigurationDirectoryMode",
    "RuntimeDirectoryPreserve",
    "TimeoutCleanSec",
    "ReadWritePaths",
    "ReadOnlyPaths",
    "InaccessiblePaths",
    "ExecPaths",
    "NoExecPaths",
    "TemporaryFileSystem",
    "PrivateTmp",
    "PrivateDevices",
    "PrivateNetwork",
    "NetworkNamespacePath",
    "PrivateIPC",
    "IPCNamespacePath",
    "MemoryKSM",
    "PrivatePIDs",
    "PrivateUsers",
    "ProtectHostname",
    "ProtectClock",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "RestrictAddressFamilies",
    "RestrictFileSystems",
    "RestrictNamespaces",
    "LockPersonality",
    "MemoryDenyWriteExecute",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "RemoveIPC",
    "PrivateMounts",
    "MountFlags",
    "SystemCallFilter",
    "SystemCallErrorNumber",
    "SystemCallArchitectures",
    "SystemCallLog",
    "Environment",
    "EnvironmentFile",
    "PassEnvironment",
    "UnsetEnvironment",
    "StandardInput",
    "StandardOutput",
    "StandardError",
    "StandardInputText",
    "StandardInputData",
    "LogLevelMax",
    "LogExtraFields",
    "LogRateLimitIntervalSec",
    "LogRateLimitBurst",
    "LogFilterPatterns",
    "LogNamespace",
    "SyslogIdentifier",
    "SyslogFacility",
    "SyslogLevel",
    "SyslogLevelPrefix",
    "TTYPath",
    "TTYReset",
    "TTYVHangup",
    "TTYColumns",
    "TTYRows",
    "TTYVTDisallocate",
    "LoadCredential",
    "LoadCredentialEncrypted",
    "ImportCredential",
    "SetCredential",
    "SetCredentialEncrypted",
    "UtmpIdentifier",
    "UtmpMode",
];

/// systemd.kill(5).
const KILL: &[&str] = &[
    "KillMode",
    "KillSignal",
    "RestartKillSignal",
    "SendSIGHUP",
    "SendSIGKILL",
    "FinalKillSignal",
    "WatchdogSignal",
];

/// systemd.resource-control(5).
const RESOURCES: &[&str] = &[
    "CPUAccounting",
    "CPUWeight",
    "StartupCPUWeight",
    "CPUQuota",
    "CPUQuotaPeriodSec",
    "AllowedCPUs",
    "StartupAllowedCPUs",
    "AllowedMemoryNodes",
    "StartupAllowedMemoryNodes",
    "MemoryAccounting",
    "MemoryMin",
    "MemoryLow",
    "StartupMemoryLow",
    "DefaultStartupMemoryLow",
    "DefaultMemoryLow",
    "DefaultMemoryMin",
    "MemoryHigh",
    "StartupMemoryHigh",
    "MemoryMax",
    "StartupMemoryMax",
    "MemorySwapMax",
    "StartupMemorySwapMax",
    "MemoryZSwapMax",
    "StartupMemoryZSwapMax",
    "MemoryZSwapWriteback",
    "TasksAccounting",
    "TasksMax",
    "IOAccounting",
    "IOWeight",
    "StartupIOWeight",
    "IODeviceWeight",
    "IOReadBandwidthMax",
    "IOWriteBandwidthMax",
    "IOReadIOPSMax",
    "IOWriteIOPSMax",
    "IODeviceLatencyTargetSec",
    "IPAccounting",
    "IPAddressAllow",
    "IPAddressDeny",
    "SocketBindAllow",
    "SocketBindDeny",
    "RestrictNetworkInterfaces",
    "NFTSet",
    "IPIngressFilterPath",
    "IPEgressFilterPath",
    "BPFProgram",
    "DeviceAllow",
    "DevicePolicy",
    "Slice",
    "Delegate",
    "DelegateSubgroup",
    "DisableControllers",
    "ManagedOOMSwap",
    "ManagedOOMMemoryPressure",
    "ManagedOOMMemoryPressureLimit",
    "ManagedOOMMemoryPressureDurationSec",
    "ManagedOOMPreference",
    "MemoryPressureWatch",
    "MemoryPressureThresholdSec",
    "CoredumpReceive",
];

/// The section named after a unit type, and the key tables it reads.
fn type_section(unit_type: &str) -> Option<(&'static str, &'static [&'static [&'static str]])> {
    Some(match unit_type {
        "service" => ("Service", &[SERVICE, EXEC, KILL, RESOURCES]),
        "socket" => ("Socket", &[SOCKET, EXEC, KILL, RESOURCES]),
        "mount" => ("Mount", &[MOUNT, EXEC, KILL, RESOURCES]),
        "swap" => ("Swap", &[SWAP, EXEC, KILL, RESOURCES]),
        "timer" => ("Timer", &[TIMER]),
        "path" => ("Path", &[PATH]),
        "automount" => ("Automount", &[AUTOMOUNT]),
        "slice" => ("Slice", &[RESOURCES]),
        _ => return None,
    })
}

/// The sections a unit of this type may have, in the order a unit file
/// lists them.
pub fn sections_for(unit_type: &str) -> Vec<&'static str> {
    let mut out = vec!["Unit"];
    if let Some((name, _)) = type_section(unit_type) {
        out.push(name);
    }
    out.push("Install");
    out
}

fn keys_of(section: &str, unit_type: &str) -> Vec<&'static str> {
    match section {
        "Unit" => UNIT.to_vec(),
        "Install" => INSTALL.to_vec(),
        _ => match type_section(unit_type) {
            Some((name, tables)) if name == section => tables.concat(),
            _ => Vec::new(),
        },
    }
}

fn is_condition(key: &str) -> bool {
    ["Condition", "Assert"].iter().any(|p| {
        key.strip_prefix(p)
            .is_some_and(|rest| CONDITIONS.contains(&rest))
    })
}

/// Why a section or key would be ignored by systemd, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectiveProblem {
    pub message: String,
    pub hint: String,
}

/// Checks a `[section]` name for a unit type. `X-` sections are for
/// extensions and allowed.
pub fn check_section(unit_type: &str, section: &str) -> Result<(), DirectiveProblem> {
    let allowed = sections_for(unit_type);
    if allowed.contains(&section) || section.starts_with("X-") {
        return Ok(());
    }
    Err(DirectiveProblem {
        message: format!("a .{unit_type} unit has no [{section}] section; systemd would ignore it"),
        hint: format!(
            "use {}",
            allowed
                .iter()
                .map(|s| format!("[{s}]"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// Checks `key=` under `[section]` of a unit of this type. `X-` keys are
/// for extensions and allowed.
pub fn check_key(unit_type: &str, section: &str, key: &str) -> Result<(), DirectiveProblem> {
    if key.starts_with("X-") || section.starts_with("X-") {
        return Ok(());
    }
    let keys = keys_of(section, unit_type);
    if keys.contains(&key) || (section == "Unit" && is_condition(key)) {
        return Ok(());
    }
    let message = format!(
        "{key}= is not a [{section}] setting of a .{unit_type} unit; systemd would ignore it"
    );
    // The most useful hint: the section where the key does belong.
    let home = sections_for(unit_type)
        .into_iter()
        .find(|s| *s != section && keys_of(s, unit_type).contains(&key));
    let hint = match home {
        Some(s) => format!("move {key}= to [{s}]"),
        None => match keys
            .iter()
            .map(|k| (strsim::jaro_winkler(k, key), *k))
            .filter(|(score, _)| *score > 0.85)
            .max_by(|a, b| a.0.total_cmp(&b.0))
        {
            Some((_, k)) => format!("did you mean {k}=?"),
            None => format!("see the manual of systemd.{unit_type} for the [{section}] settings"),
        },
    };
    Err(DirectiveProblem { message, hint })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_under_unit_is_refused_with_a_move_hint() {
        let e = check_key("service", "Unit", "Restart").unwrap_err();
        assert!(e.message.contains("Restart="));
        assert_eq!(e.hint, "move Restart= to [Service]");
    }

    #[test]
    fn typos_get_a_suggestion() {
        let e = check_key("service", "Service", "ExecStrat").unwrap_err();
        assert_eq!(e.hint, "did you mean ExecStart=?");
    }

    #[test]
    fn known_keys_pass() {
        assert!(check_key("service", "Service", "ProtectSystem").is_ok());
        assert!(check_key("service", "Service", "MemoryMax").is_ok());
        assert!(check_key("timer", "Timer", "Persistent").is_ok());
        assert!(check_key("service", "Unit", "ConditionPathExists").is_ok());
        assert!(check_key("service", "Unit", "AssertPathExists").is_ok());
        assert!(check_key("service", "Service", "X-Whatever").is_ok());
        assert!(check_key("timer", "Timer", "ExecStart").is_err());
        assert!(check_key("target", "Unit", "Description").is_ok());
    }

    #[test]
    fn sections_per_type() {
        assert!(check_section("service", "Service").is_ok());
        assert!(check_section("timer", "Service").is_err());
        assert!(check_section("target", "Service").is_err());
        assert!(check_section("target", "Install").is_ok());
        assert_eq!(sections_for("timer"), vec!["Unit", "Timer", "Install"]);
    }
}
