use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

fn argv(line: &CommandLine) -> Vec<Vec<&str>> {
    line.commands.iter().map(|command| command.argv.iter().map(String::as_str).collect()).collect()
}

#[test]
fn options_then_command() {
    let line = CommandLine::parse("--bootchart --env=A=1 --env=B=x=y --cwd=/tmp /hello a b").unwrap();
    assert!(line.options.bootchart);
    assert!(!line.options.verbose);
    assert_eq!(
        line.options.environment,
        vec![("A".to_string(), "1".to_string()), ("B".to_string(), "x=y".to_string())]
    );
    assert_eq!(line.options.cwd.as_deref(), Some("/tmp"));
    assert_eq!(argv(&line), vec![vec!["/hello", "a", "b"]]);
}

#[test]
fn every_flag_is_known() {
    let line = CommandLine::parse(
        "--verbose --nopci --power-off-on-abort --noshutdown --exit-record --noxsave --trace \
         --net-activity /app",
    )
    .unwrap();
    let options = &line.options;
    assert!(options.verbose && options.no_pci && options.power_off_on_abort);
    assert!(options.no_shutdown && options.exit_record && options.no_xsave && options.trace);
    assert!(options.net_activity);
}

#[test]
fn terminals_boot_reports_and_users_are_options() {
    let line = CommandLine::parse(
        "--report-boot --serial-streams --tty=0,2 --tty-size=132x43 --tty-mode=host --user=1000:50 /app",
    )
    .unwrap();
    let options = &line.options;
    assert!(options.report_boot && options.serial_streams);
    assert_eq!(options.terminal_streams, [true, false, true]);
    assert_eq!(options.terminal_size, Some((132, 43)));
    assert_eq!(options.terminal_mode, TerminalMode::Host);
    assert_eq!(options.user, Some((1000, 50)));
    let defaults = CommandLine::parse("--user=7 /app").unwrap().options;
    assert_eq!(defaults.user, Some((7, 0)), "group 0 unless given");
    assert_eq!(defaults.terminal_streams, [false; 3]);
    assert_eq!(defaults.terminal_mode, TerminalMode::Guest);
    for (line, error) in [
        ("--tty=3 /app", Error::BadTerminal("3".to_string())),
        ("--tty=0,,1 /app", Error::BadTerminal("0,,1".to_string())),
        ("--tty-size=80 /app", Error::BadTerminalSize("80".to_string())),
        ("--tty-size=80x-1 /app", Error::BadTerminalSize("80x-1".to_string())),
        ("--tty-mode=raw /app", Error::BadTerminalMode("raw".to_string())),
        ("--user=root /app", Error::BadUser("root".to_string())),
        ("--user=1:x /app", Error::BadUser("1:x".to_string())),
        ("--user=4294967295 /app", Error::BadUser("4294967295".to_string())),
    ] {
        assert_eq!(CommandLine::parse(line), Err(error), "{line}");
    }
    let streams = CommandLine::parse(&format!("{} /app", rosv_abi::streams::SERIAL_STREAMS_OPTION)).unwrap();
    assert!(streams.options.serial_streams);
}

#[test]
fn exit_record_option_matches_the_abi() {
    let line = CommandLine::parse(&format!("{} /app", rosv_abi::exit::RECORD_OPTION)).unwrap();
    assert!(line.options.exit_record);
}

#[test]
fn unknown_and_malformed_options_are_errors() {
    assert_eq!(CommandLine::parse("--bogus /app"), Err(Error::UnknownOption("--bogus".to_string())));
    assert_eq!(CommandLine::parse("--verbose=1 /app"), Err(Error::UnexpectedValue("--verbose")));
    assert_eq!(CommandLine::parse("--cwd /app"), Err(Error::MissingValue("--cwd")));
    assert_eq!(CommandLine::parse("--env=NOVALUE /app"), Err(Error::BadEnvironment("NOVALUE".to_string())));
    assert_eq!(CommandLine::parse("--env==v /app"), Err(Error::BadEnvironment("=v".to_string())));
    let message = CommandLine::parse("--frobnicate /app").unwrap_err().to_string();
    assert_eq!(message, "unknown option --frobnicate");
    assert_eq!(CommandLine::parse("--rootfs=zfs /app"), Err(Error::UnknownRootFilesystem("zfs".to_string())));
    assert_eq!(CommandLine::parse("--rootfs /app"), Err(Error::MissingValue("--rootfs")));
}

#[test]
fn more_filesystems_can_be_mounted() {
    use crate::Mount;
    let line = CommandLine::parse("--mount-fs=rofs,/dev/vdb,/data --mount-fs=ramfs,,/scratch /app").unwrap();
    assert_eq!(
        line.options.mounts,
        [
            Mount { filesystem: "rofs".into(), source: "/dev/vdb".into(), path: "/data".into() },
            Mount { filesystem: "ramfs".into(), source: "".into(), path: "/scratch".into() },
        ]
    );
    for bad in ["rofs,/dev/vdb", "rofs,/dev/vdb,data", ",/dev/vdb,/data"] {
        assert_eq!(
            CommandLine::parse(&format!("--mount-fs={bad} /app")),
            Err(Error::BadMount(bad.to_string())),
            "{bad}"
        );
    }
}

#[test]
fn network_addresses_are_read() {
    use core::net::Ipv4Addr;

    use crate::InterfaceAddress;
    let line = CommandLine::parse(
        "--ip=eth0,192.168.122.10,255.255.255.0 --ip=eth1,10.1.2.3,16 --defaultgw=192.168.122.1 \
         --nameserver=1.1.1.1 --nameserver=8.8.8.8 /app",
    )
    .unwrap();
    assert_eq!(
        line.options.addresses,
        [
            InterfaceAddress {
                interface: "eth0".into(),
                address: Ipv4Addr::new(192, 168, 122, 10),
                prefix_length: 24
            },
            InterfaceAddress {
                interface: "eth1".into(),
                address: Ipv4Addr::new(10, 1, 2, 3),
                prefix_length: 16
            },
        ]
    );
    assert_eq!(line.options.default_gateway, Some(Ipv4Addr::new(192, 168, 122, 1)));
    assert_eq!(line.options.nameservers, [Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(8, 8, 8, 8)]);
    let later = CommandLine::parse("--ip=eth0,10.0.0.1,8 --ip=eth0,10.0.0.2,255.0.0.0 /app").unwrap();
    assert_eq!(later.options.addresses.len(), 1, "a later --ip replaces an earlier one");
    assert_eq!(later.options.addresses[0].address, Ipv4Addr::new(10, 0, 0, 2));
}

#[test]
fn malformed_network_addresses_are_errors() {
    for bad in [
        "eth0,10.0.0.1",
        "eth0,10.0.0.300,255.0.0.0",
        "eth0,10.0.0.1,255.0.255.0",
        "eth0,10.0.0.1,33",
        ",10.0.0.1,8",
        "eth0,10.0.0.1,8,extra",
    ] {
        let error = CommandLine::parse(&format!("--ip={bad} /app")).unwrap_err();
        assert_eq!(error, Error::BadAddress { option: "--ip", value: bad.to_string() });
        assert!(error.to_string().contains("<interface>,<address>,<netmask>"), "{error}");
    }
    assert_eq!(
        CommandLine::parse("--defaultgw=gateway /app"),
        Err(Error::BadAddress { option: "--defaultgw", value: "gateway".to_string() })
    );
    assert_eq!(CommandLine::parse("--nameserver /app"), Err(Error::MissingValue("--nameserver")));
}

#[test]
fn the_root_filesystem_can_be_chosen() {
    use crate::RootFilesystem;
    assert_eq!(CommandLine::parse("/app").unwrap().options.rootfs, None);
    assert_eq!(CommandLine::parse("--rootfs=rofs /app").unwrap().options.rootfs, Some(RootFilesystem::Rofs));
    assert_eq!(
        CommandLine::parse("--rootfs=overlay /app").unwrap().options.rootfs,
        Some(RootFilesystem::Overlay)
    );
    assert_eq!(
        CommandLine::parse("--rootfs=ramfs /app").unwrap().options.rootfs,
        Some(RootFilesystem::Ramfs)
    );
}

#[test]
fn option_values_may_be_quoted() {
    let text =
        format!("{} {} /app", option_with_value("env", "A=hello world"), option_with_value("cwd", "/x y"));
    let line = CommandLine::parse(&text).unwrap();
    assert_eq!(line.options.environment, vec![("A".to_string(), "hello world".to_string())]);
    assert_eq!(line.options.cwd.as_deref(), Some("/x y"));
    let line = CommandLine::parse("\"--verbose\" x").unwrap();
    assert!(!line.options.verbose);
    assert_eq!(argv(&line), vec![vec!["--verbose", "x"]]);
}

#[test]
fn options_end_at_the_command_or_double_dash() {
    let line = CommandLine::parse("/app --bogus").unwrap();
    assert_eq!(argv(&line), vec![vec!["/app", "--bogus"]]);
    let line = CommandLine::parse("--verbose -- --weird-name x").unwrap();
    assert_eq!(argv(&line), vec![vec!["--weird-name", "x"]]);
}

#[test]
fn firecracker_tokens_are_removed() {
    let line = CommandLine::parse(
        "reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux \
         --bootchart /hello world virtio_mmio.device=4K@0xc0001000:5 \
         virtio_mmio.device=4K@0xc0002000:6 pci=off",
    )
    .unwrap();
    assert!(line.options.bootchart);
    assert_eq!(argv(&line), vec![vec!["/hello", "world"]]);
    assert_eq!(line.mmio_devices.len(), 2);
    assert_eq!(line.mmio_devices[1], MmioDevice { base: 0xc000_2000, size: 4096, irq: 6, id: None });
    assert_eq!(line.ignored.first().map(String::as_str), Some("reboot=k"));
    assert_eq!(line.ignored.last().map(String::as_str), Some("pci=off"));
}

#[test]
fn qemu_microvm_devices_are_removed() {
    let line = CommandLine::parse("/app virtio_mmio.device=512@0xfeb00e00:12").unwrap();
    assert_eq!(argv(&line), vec![vec!["/app"]]);
    assert_eq!(line.mmio_devices, vec![MmioDevice { base: 0xfeb0_0e00, size: 512, irq: 12, id: None }]);
}

#[test]
fn hypervisor_lookalikes_inside_the_command_stay() {
    let line = CommandLine::parse("/app panic=1 x").unwrap();
    assert_eq!(argv(&line), vec![vec!["/app", "panic=1", "x"]]);
    let line = CommandLine::parse("/app \"panic=1\"").unwrap();
    assert_eq!(argv(&line), vec![vec!["/app", "panic=1"]]);
}

#[test]
fn malformed_devices_are_errors() {
    for bad in ["virtio_mmio.device=4K", "virtio_mmio.device=4Q@0x1:5", "virtio_mmio.device=0@0x1000:5"] {
        let result = CommandLine::parse(&format!("/app {bad}"));
        assert!(matches!(result, Err(Error::BadMmioDevice(..))), "{bad}: {result:?}");
    }
    let device = MmioDevice::parse("1M@4096:7:3").unwrap();
    assert_eq!(device, MmioDevice { base: 4096, size: 1 << 20, irq: 7, id: Some(3) });
    assert_eq!(MmioDevice::parse("1@0xffffffffffffffff:1"), Err(MmioDeviceError::BadWindow));
    assert_eq!(MmioDevice::parse("99999999999G@0:1"), Err(MmioDeviceError::BadNumber));
}

#[test]
fn quotes_and_escapes() {
    let line = CommandLine::parse(r#"/app "a b" 'c "d"' e\ f "g\"h" "" 'x'y"#).unwrap();
    assert_eq!(argv(&line), vec![vec!["/app", "a b", "c \"d\"", "e f", "g\"h", "", "xy"]]);
    assert_eq!(CommandLine::parse("/app \"open"), Err(Error::UnterminatedQuote));
    assert_eq!(CommandLine::parse("/app 'open"), Err(Error::UnterminatedQuote));
    assert_eq!(CommandLine::parse("/app \\"), Err(Error::TrailingBackslash));
}

#[test]
fn commands_split_on_separators() {
    let line = CommandLine::parse("/a 1; /b 2 & /c;").unwrap();
    assert_eq!(argv(&line), vec![vec!["/a", "1"], vec!["/b", "2"], vec!["/c"]]);
    assert!(!line.commands[0].is_background);
    assert!(line.commands[1].is_background);
    let line = CommandLine::parse("/a ';' x\\&").unwrap();
    assert_eq!(argv(&line), vec![vec!["/a", ";", "x&"]]);
    assert_eq!(CommandLine::parse("; /a"), Err(Error::EmptyCommand));
}

#[test]
fn empty_line_has_no_command() {
    let line = CommandLine::parse("  --verbose ").unwrap();
    assert!(line.commands.is_empty());
}

proptest! {
    #[test]
    fn quoted_arguments_round_trip(arguments in proptest::collection::vec(".*", 0..6)) {
        let mut text = String::from("--verbose /app");
        for argument in &arguments {
            text.push(' ');
            text.push_str(&quote(argument));
        }
        text.push_str(" virtio_mmio.device=4K@0x1000:5 pci=off");
        let line = CommandLine::parse(&text).unwrap();
        let mut expected = vec![String::from("/app")];
        expected.extend(arguments);
        prop_assert_eq!(line.commands.len(), 1);
        prop_assert_eq!(&line.commands[0].argv, &expected);
    }

    #[test]
    fn never_panics(text in ".*") {
        let _ = CommandLine::parse(&text);
    }
}

#[test]
fn a_self_test_is_named_and_checked() {
    use crate::SelfTest;
    assert_eq!(CommandLine::parse("/app").unwrap().options.self_test, None);
    assert_eq!(
        CommandLine::parse("--self-test=stack-overflow /app").unwrap().options.self_test,
        Some(SelfTest::StackOverflow)
    );
    let error = CommandLine::parse("--self-test=melt /app").unwrap_err();
    assert!(error.to_string().contains("stack-overflow"), "{error}");
}

#[test]
fn vsock_forwards_name_two_ports() {
    let line = CommandLine::parse("--vsock-forward=8080:80 --vsock-forward=5000:5001 /app").unwrap();
    assert_eq!(line.options.vsock_forwards, vec![(8080, 80), (5000, 5001)]);
    for bad in ["--vsock-forward=8080", "--vsock-forward=a:1", "--vsock-forward=1:70000"] {
        let error = CommandLine::parse(&format!("{bad} /app")).unwrap_err();
        assert!(matches!(error, Error::BadVsockForward(_)), "{bad}: {error:?}");
    }
}

#[test]
fn vsock_listens_name_a_tcp_port_a_cid_and_a_vsock_port() {
    let line = CommandLine::parse("--vsock-listen=9001:2:9001 --vsock-listen=80:2:4000 /app").unwrap();
    assert_eq!(
        line.options.vsock_listens,
        vec![
            VsockListen { tcp_port: 9001, cid: 2, vsock_port: 9001 },
            VsockListen { tcp_port: 80, cid: 2, vsock_port: 4000 },
        ]
    );
    for bad in [
        "--vsock-listen=9001:2",
        "--vsock-listen=9001:2:3:4",
        "--vsock-listen=70000:2:1",
        "--vsock-listen=1:x:1",
    ] {
        let error = CommandLine::parse(&format!("{bad} /app")).unwrap_err();
        assert!(matches!(error, Error::BadVsockListen(_)), "{bad}: {error:?}");
    }
}
