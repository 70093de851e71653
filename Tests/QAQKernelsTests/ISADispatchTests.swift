import Foundation
import QAQ
import Testing

@Suite("ISA levels: selection and one binary")
struct ISADispatchTests {
    @Test("QAQ_ISA selects a level, refuses unknown or unsupported ones")
    func selection() throws {
        #expect(try ISALevel.selected(environment: [:]) == ISALevel.detected)
        for level in ISALevel.available {
            #expect(try ISALevel.selected(environment: ["QAQ_ISA": level.rawValue]) == level)
            #expect(KernelSet.forLevel(level).isa == level)
        }
        #expect(throws: ISAError.unknownLevel("avx9")) { try ISALevel.selected(environment: ["QAQ_ISA": "avx9"]) }
        for level in ISALevel.compiled where level > ISALevel.detected {
            #expect(throws: ISAError.unsupportedByCPU(level, detected: ISALevel.detected)) {
                try ISALevel.selected(environment: ["QAQ_ISA": level.rawValue])
            }
        }
        #if arch(x86_64)
        #expect(ISALevel.compiled == [.base, .v3, .v4])
        #endif
    }

    /// The three kernel modules are compiled from the same sources with different -march.
    /// Any generic stdlib function they specialize is emitted as a *weak* symbol of the same
    /// name in each, and the linker keeps one copy for all callers: the v4 copy could then
    /// run on a v3 CPU. The kernels are written to emit none; this checks the objects.
    @Test("variant kernel objects define no weak symbols shared across modules")
    func noSharedWeakSymbols() throws {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        // Walk up from the test bundle to the build directory holding <Module>.build folders.
        for _ in 0..<6 where !FileManager.default.fileExists(atPath: dir.appendingPathComponent("QAQKernelsBase.build").path) {
            dir = dir.deletingLastPathComponent()
        }
        let modules = ISALevel.compiled.map { $0 == .base ? "QAQKernelsBase" : "QAQKernels\($0.rawValue.uppercased())" }
        var checked = 0
        for module in modules {
            let objDir = dir.appendingPathComponent("\(module).build")
            let objects = try FileManager.default.contentsOfDirectory(atPath: objDir.path).filter { $0.hasSuffix(".o") }
            try #require(!objects.isEmpty, "no objects for \(module) under \(objDir.path)")
            for object in objects {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                p.arguments = ["nm", "--defined-only", objDir.appendingPathComponent(object).path]
                let pipe = Pipe()
                p.standardOutput = pipe
                try p.run()
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                p.waitUntilExit()
                #expect(p.terminationStatus == 0)
                let shared = String(decoding: data, as: UTF8.self).split(separator: "\n").filter { line in
                    let f = line.split(separator: " ")
                    guard f.count == 3, f[1] == "W" else { return false }
                    // Module-qualified symbols are distinct per variant; the rest are shared.
                    return !f[2].contains(module)
                }
                #expect(shared.isEmpty, "\(module)/\(object) defines shared weak symbols: \(shared)")
                checked += 1
            }
        }
        #expect(checked >= 3 * modules.count)
    }
}
