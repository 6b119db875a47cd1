//! Builds reeld, its unit tests and its fuzz targets.
//!
//! Sources are discovered, not listed: every .c under src/, actors/, proto/ and cmd/ is part of the
//! core (cmd/main.c is the binary's entry point), every tests/unit/**/test_*.c is one test
//! program, every tests/fuzz/fuzz_*.c one libFuzzer target, every bench/bench_*.c one benchmark
//! program. Adding a module needs no edit here. Every file under assets/ (the web console, the
//! OpenAPI document) is embedded in the binary: a C file generated here holds their bytes
//! (src/rt/assets.h), so the files stay files in the repository and a change to one rebuilds
//! what embeds it.
//!
//! Zig's own toolchain has no AddressSanitizer runtime, so `-Dsanitize=address|thread` builds
//! with the system C compiler (gcc, whose libasan/libubsan/libtsan Debian ships) through cached
//! Run steps with depfiles; the plain build uses `zig cc`. Both use the same flags and libraries.
const std = @import("std");

const Sanitize = enum { none, address, thread };

const cflags_common = [_][]const u8{
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wstrict-prototypes",
    "-Wno-missing-field-initializers",
    "-D_GNU_SOURCE",
};

const pkg_libs = [_][]const u8{
    "liburing",   "libavformat",   "libavcodec", "libavfilter", "libavutil",
    "libswscale", "libswresample", "libpq",      "hiredis",     "sqlite3", "zimg",
};

pub fn build(b: *std.Build) !void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const sanitize = b.option(Sanitize, "sanitize", "address (ASan+UBSan) or thread (TSan): build with the system cc") orelse .none;
    const version = b.option([]const u8, "version", "version string baked into the binary") orelse "0.1.0";

    const core = try collect(b, &.{ "src", "actors", "proto", "cmd" }, ".c", "");
    var core_no_main = std.ArrayList([]const u8).init(b.allocator);
    for (core) |f| if (!std.mem.eql(u8, f, "cmd/main.c")) try core_no_main.append(f);
    const tests = try collect(b, &.{"tests/unit"}, ".c", "test_");
    const fuzzers = try collect(b, &.{"tests/fuzz"}, ".c", "fuzz_");
    const benches = try collect(b, &.{"bench"}, ".c", "bench_");

    const version_flag = b.fmt("-DREELD_VERSION=\"{s}\"", .{version});
    const assets_c = try embedAssets(b);
    const test_step = b.step("test", "Build and run every unit test (with -Dsanitize=thread: the runtime's)");
    const fuzz_step = b.step("fuzz", "Build the libFuzzer targets into zig-out/fuzz (clang-14)");
    const run_step = b.step("run", "Run reeld with the given arguments");
    const bench_step = b.step("bench", "Build the benchmark programs into zig-out/bench (use -Doptimize=ReleaseFast)");

    if (sanitize == .none) {
        // No static library: linking system libraries into an archive would put the .so files
        // inside it. Zig caches each C object by content and flags, so the core sources are
        // compiled once whichever program includes them.
        const lib = core_no_main.items;
        const exe = program(b, target, optimize, "reeld", "cmd/main.c", lib, version, assets_c);
        b.installArtifact(exe);
        const run = b.addRunArtifact(exe);
        run.stdio = .inherit;
        if (b.args) |args| run.addArgs(args);
        run_step.dependOn(&run.step);

        for (benches) |f| {
            const bx = program(b, target, optimize, std.fs.path.stem(f), f, lib, version, assets_c);
            const inst = b.addInstallArtifact(bx, .{ .dest_dir = .{ .override = .{ .custom = "bench" } } });
            bench_step.dependOn(&inst.step);
        }

        for (tests) |t| {
            const name = std.fs.path.stem(t);
            const tx = program(b, target, optimize, name, t, lib, version, assets_c);
            const inst = b.addInstallArtifact(tx, .{ .dest_dir = .{ .override = .{ .custom = "test" } } });
            const tr = b.addRunArtifact(tx);
            tr.stdio = .inherit;
            tr.has_side_effects = true;
            tr.step.dependOn(&inst.step);
            test_step.dependOn(&tr.step);
        }
    } else {
        try systemCcBuild(b, sanitize, core_no_main.items, tests, version_flag, test_step, run_step, assets_c);
    }

    for (fuzzers) |f| {
        const name = std.fs.path.stem(f);
        const cmd = b.addSystemCommand(&.{ "clang-14", "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-I." });
        cmd.addArgs(&cflags_common);
        // Fuzz targets include the parser under test: the depfile makes its edits rebuild them.
        cmd.addArg("-MD");
        _ = cmd.addPrefixedDepFileOutputArg("-MF", "fuzz.d");
        cmd.addFileArg(b.path(f));
        // The TLS target runs BearSSL's engine under the fuzzer (the library itself is not
        // instrumented; what reeld does around it is).
        cmd.addArgs(&.{ "-lbearssl", "-lpthread", "-o" });
        const out = cmd.addOutputFileArg(name);
        const inst = b.addInstallFileWithDir(out, .{ .custom = "fuzz" }, name);
        fuzz_step.dependOn(&inst.step);
    }
}

/// assets/** as one generated C file: rd_embedded_files[] with each file's path under assets/, its bytes
/// (NUL-terminated, not counted) and length. Read when the build graph is made, so an edited
/// asset changes the generated file's content and Zig's cache rebuilds it.
fn embedAssets(b: *std.Build) !std.Build.LazyPath {
    const files = try collect(b, &.{"assets"}, "", "");
    var out = std.ArrayList(u8).init(b.allocator);
    const w = out.writer();
    try w.writeAll("/* Generated by build.zig from assets/: do not edit. */\n#include \"src/rt/assets.h\"\n\n");
    for (files, 0..) |f, i| {
        const data = try b.build_root.handle.readFileAlloc(b.allocator, f, 16 << 20);
        try w.print("static const char asset_{d}[] = {{", .{i});
        for (data, 0..) |c, k| {
            if (k % 24 == 0) try w.writeAll("\n   ");
            try w.print(" {d},", .{c});
        }
        try w.writeAll(" 0};\n");
    }
    try w.writeAll("\nconst rd_embedded rd_embedded_files[] = {\n");
    for (files, 0..) |f, i| {
        try w.print("    {{\"{s}\", asset_{d}, sizeof(asset_{d}) - 1}},\n", .{ f["assets/".len..], i, i });
    }
    try w.print("}};\nconst int rd_nembedded = {d};\n", .{files.len});
    const wf = b.addWriteFiles();
    return wf.add("assets.c", out.items);
}

fn program(b: *std.Build, target: std.Build.ResolvedTarget, optimize: std.builtin.OptimizeMode, name: []const u8, main_src: []const u8, core: []const []const u8, version: []const u8, assets_c: std.Build.LazyPath) *std.Build.Step.Compile {
    const mod = b.createModule(.{ .target = target, .optimize = optimize, .link_libc = true });
    mod.addCSourceFiles(.{ .files = &.{main_src}, .flags = &cflags_common });
    mod.addCSourceFiles(.{ .files = core, .flags = &cflags_common });
    mod.addCSourceFile(.{ .file = assets_c, .flags = &cflags_common });
    mod.addCMacro("REELD_VERSION", b.fmt("\"{s}\"", .{version}));
    linkSystem(b, mod);
    return b.addExecutable(.{ .name = name, .root_module = mod });
}

fn linkSystem(b: *std.Build, mod: *std.Build.Module) void {
    mod.addIncludePath(b.path("."));
    for (pkg_libs) |l| mod.linkSystemLibrary(l, .{});
    mod.linkSystemLibrary("bearssl", .{ .use_pkg_config = .no });
    mod.linkSystemLibrary("pthread", .{ .use_pkg_config = .no });
    mod.linkSystemLibrary("m", .{ .use_pkg_config = .no });
}

/// Sanitizer builds: every core object compiled once by the system cc (cached by Zig, with a
/// depfile so header edits rebuild), then linked into reeld and each test.
fn systemCcBuild(b: *std.Build, sanitize: Sanitize, core: []const []const u8, tests: []const []const u8, version_flag: []const u8, test_step: *std.Build.Step, run_step: *std.Build.Step, assets_c: std.Build.LazyPath) !void {
    const san_flags: []const []const u8 = switch (sanitize) {
        .address => &.{ "-fsanitize=address,undefined", "-fno-sanitize-recover=all" },
        .thread => &.{"-fsanitize=thread"},
        .none => unreachable,
    };
    const pc = b.run(&(.{ "pkg-config", "--cflags", "--libs" } ++ pkg_libs));
    var pc_args = std.ArrayList([]const u8).init(b.allocator);
    var it = std.mem.tokenizeAny(u8, pc, " \n\t");
    while (it.next()) |a| try pc_args.append(a);
    const base = [_][]const u8{ "cc", "-g", "-O1", "-fno-omit-frame-pointer", "-I." };

    var objs = std.ArrayList(std.Build.LazyPath).init(b.allocator);
    for (core) |src| {
        const cc = b.addSystemCommand(&base);
        cc.addArgs(&cflags_common);
        cc.addArgs(san_flags);
        cc.addArg(version_flag);
        cc.addArgs(pc_args.items);
        cc.addArgs(&.{ "-c", "-MD" });
        _ = cc.addPrefixedDepFileOutputArg("-MF", "obj.d");
        cc.addFileArg(b.path(src));
        cc.addArg("-o");
        try objs.append(cc.addOutputFileArg("obj.o"));
    }
    {
        const cc = b.addSystemCommand(&base);
        cc.addArgs(&cflags_common);
        cc.addArgs(san_flags);
        cc.addArgs(&.{ "-c", "-MD" });
        _ = cc.addPrefixedDepFileOutputArg("-MF", "obj.d");
        cc.addFileArg(assets_c);
        cc.addArg("-o");
        try objs.append(cc.addOutputFileArg("obj.o"));
    }

    const link = struct {
        fn exe(bb: *std.Build, name: []const u8, main_src: []const u8, o: []const std.Build.LazyPath, sf: []const []const u8, pca: []const []const u8, vf: []const u8) std.Build.LazyPath {
            const cc = bb.addSystemCommand(&base);
            cc.addArgs(&cflags_common);
            cc.addArgs(sf);
            cc.addArg(vf);
            cc.addArgs(&.{"-MD"});
            _ = cc.addPrefixedDepFileOutputArg("-MF", "main.d");
            cc.addFileArg(bb.path(main_src));
            for (o) |obj| cc.addFileArg(obj);
            cc.addArgs(pca);
            cc.addArgs(&.{ "-lbearssl", "-lpthread", "-lm", "-o" });
            return cc.addOutputFileArg(name);
        }
    };

    const exe = link.exe(b, "reeld", "cmd/main.c", objs.items, san_flags, pc_args.items, version_flag);
    b.getInstallStep().dependOn(&b.addInstallBinFile(exe, "reeld").step);
    const run = std.Build.Step.Run.create(b, "run reeld");
    run.addFileArg(exe);
    run.stdio = .inherit;
    if (b.args) |args| run.addArgs(args);
    run_step.dependOn(&run.step);

    for (tests) |t| {
        // Under TSan only the concurrency tests run: the runtime's, and the asynchronous blob
        // store's (requests from other threads, the fs LIST's walk on a thread of its own).
        // The rest is single-threaded.
        if (sanitize == .thread and !std.mem.startsWith(u8, t, "tests/unit/rt/") and
            !std.mem.eql(u8, t, "tests/unit/blob/test_aio.c")) continue;
        const name = std.fs.path.stem(t);
        const bin = link.exe(b, name, t, objs.items, san_flags, pc_args.items, version_flag);
        const inst = b.addInstallFileWithDir(bin, .{ .custom = "test" }, name);
        const tr = std.Build.Step.Run.create(b, b.fmt("run {s}", .{name}));
        tr.addFileArg(bin);
        tr.stdio = .inherit;
        tr.has_side_effects = true;
        tr.step.dependOn(&inst.step);
        test_step.dependOn(&tr.step);
    }
}

/// Every file under `dirs` ending in `ext` whose name starts with `prefix`, sorted, as paths
/// relative to the build root.
fn collect(b: *std.Build, dirs: []const []const u8, ext: []const u8, prefix: []const u8) ![]const []const u8 {
    var out = std.ArrayList([]const u8).init(b.allocator);
    for (dirs) |d| {
        var dir = b.build_root.handle.openDir(d, .{ .iterate = true }) catch |e| switch (e) {
            error.FileNotFound => continue,
            else => return e,
        };
        defer dir.close();
        var walker = try dir.walk(b.allocator);
        defer walker.deinit();
        while (try walker.next()) |entry| {
            if (entry.kind != .file) continue;
            if (!std.mem.endsWith(u8, entry.basename, ext)) continue;
            if (!std.mem.startsWith(u8, entry.basename, prefix)) continue;
            try out.append(b.fmt("{s}/{s}", .{ d, entry.path }));
        }
    }
    std.mem.sort([]const u8, out.items, {}, struct {
        fn lt(_: void, x: []const u8, y: []const u8) bool {
            return std.mem.lessThan(u8, x, y);
        }
    }.lt);
    return out.items;
}
