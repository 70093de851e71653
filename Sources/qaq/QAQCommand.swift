import ArgumentParser
import Foundation
import QAQ

@main
struct QAQCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qaq",
        abstract: "QAQ: quality-adaptive quantization of the LLM KV cache.",
        subcommands: [Bench.self, Info.self])
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the CPU, the selected ISA level and the kernel formats.")

    func run() throws {
        let isa = try selectedISA()
        print("QAQ \(QAQ.version)")
        print("CPU: \(ISALevel.cpuModel.isEmpty ? "unknown" : ISALevel.cpuModel)")
        print("features: \(ISALevel.featureNames.joined(separator: " "))")
        print("ISA levels compiled: \(ISALevel.compiled.map(\.rawValue).joined(separator: ", ")); available: \(ISALevel.available.map(\.rawValue).joined(separator: ", ")); selected: \(isa)")
    }
}

/// The ISA level from QAQ_ISA or the CPU, or a clear refusal.
func selectedISA() throws -> ISALevel {
    do {
        return try ISALevel.selected()
    } catch {
        throw ValidationError("\(error)")
    }
}

/// Prints an Encodable as one line of JSON, or as indented text.
func emit<T: Encodable>(_ value: T, json: Bool, text: () -> String) throws {
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    } else {
        print(text())
    }
}
