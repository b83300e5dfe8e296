import Foundation
import GuildNetCore

/// Matches a reply against an expected JSON value in which the strings `"<number>"`, `"<string>"`
/// and `"<any>"` stand for any value of that type. Objects must have exactly the expected keys.
public enum JSONPattern {
    /// `nil` when `actual` matches, else a description of the first difference.
    public static func mismatch(expected: JSONValue, actual: JSONValue, path: String = "$") -> String? {
        switch expected {
        case .string("<any>"):
            return nil
        case .string("<number>"):
            return actual.doubleValue != nil ? nil : "\(path): expected a number, got \(actual.jsonString)"
        case .string("<string>"):
            return actual.stringValue != nil ? nil : "\(path): expected a string, got \(actual.jsonString)"
        case .object(let expectedMembers):
            guard case .object(let actualMembers) = actual else { return "\(path): expected an object, got \(actual.jsonString)" }
            let missing = Set(expectedMembers.keys).subtracting(actualMembers.keys)
            let extra = Set(actualMembers.keys).subtracting(expectedMembers.keys)
            if !missing.isEmpty || !extra.isEmpty {
                return "\(path): missing keys \(missing.sorted()), unexpected keys \(extra.sorted()) in \(actual.jsonString)"
            }
            for key in expectedMembers.keys.sorted() {
                if let difference = mismatch(expected: expectedMembers[key]!, actual: actualMembers[key]!, path: "\(path).\(key)") {
                    return difference
                }
            }
            return nil
        case .array(let expectedItems):
            guard case .array(let actualItems) = actual, actualItems.count == expectedItems.count else {
                return "\(path): expected \(expectedItems.count) items, got \(actual.jsonString)"
            }
            for (index, item) in expectedItems.enumerated() {
                if let difference = mismatch(expected: item, actual: actualItems[index], path: "\(path)[\(index)]") {
                    return difference
                }
            }
            return nil
        default:
            if case .int(let e) = expected, case .double(let a) = actual, Double(e) == a { return nil }
            return expected == actual ? nil : "\(path): expected \(expected.jsonString), got \(actual.jsonString)"
        }
    }
}

/// Locates files of this repository from a test.
public enum Repository {
    /// The package root (the directory holding Package.swift), found from this file's path.
    public static var root: String {
        var url = #filePath
        while !url.isEmpty && url != "/" {
            url = (url as NSString).deletingLastPathComponent
            if FileManager.default.fileExists(atPath: url + "/Package.swift") { return url }
        }
        return FileManager.default.currentDirectoryPath
    }
}
