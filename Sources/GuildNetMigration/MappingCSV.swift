import GuildNetCore

/// The operator's mapping file: CSV rows `collection,key,cluster` (RFC 4180 quoting: fields may be
/// quoted, `""` inside quotes is a quote; a header row `collection,key,cluster` is optional; blank
/// lines are skipped). Each row assigns one legacy record to a cluster and wins over inference.
public struct MappingCSV: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var collection: String
        public var key: String
        public var cluster: String
        public var line: Int
    }

    public private(set) var entries: [Entry] = []
    private var index: [String: [String: String]] = [:]

    public init() {}

    /// The cluster the CSV assigns to (collection, key), if any.
    public func cluster(collection: String, key: String) -> String? {
        index[collection]?[key]
    }

    /// Every cluster the CSV names.
    public var clusters: Set<String> { Set(entries.map(\.cluster)) }

    public var isEmpty: Bool { entries.isEmpty }

    /// Parses CSV text.
    /// - Throws: ``HostError`` `mapping_invalid` naming the line: wrong field count, an unterminated
    ///   quote, an empty field, an invalid cluster name, or one record mapped to two clusters.
    public static func parse(_ text: String) throws -> MappingCSV {
        var mapping = MappingCSV()
        let records = try splitRecords(text)
        for (position, record) in records.enumerated() {
            let (line, fields) = record
            if fields.count == 1 && fields[0].isEmpty { continue }
            if position == 0 && fields.map({ $0.lowercased() }) == ["collection", "key", "cluster"] { continue }
            guard fields.count == 3 else {
                throw HostError(.mappingInvalid, "mapping line \(line): expected 3 fields collection,key,cluster, got \(fields.count)")
            }
            guard !fields[0].isEmpty, !fields[1].isEmpty, !fields[2].isEmpty else {
                throw HostError(.mappingInvalid, "mapping line \(line): collection, key and cluster must not be empty")
            }
            do {
                _ = try ClusterID(name: fields[2])
            } catch {
                throw HostError(
                    .mappingInvalid,
                    "mapping line \(line): cluster \(String(reflecting: fields[2])) is not a valid cluster name: \(HostError.wrapping(error).message)")
            }
            if let previous = mapping.index[fields[0]]?[fields[1]] {
                if previous == fields[2] { continue }
                throw HostError(
                    .mappingInvalid,
                    "mapping line \(line): \(fields[0])/\(fields[1]) is mapped to both \(previous) and \(fields[2])")
            }
            mapping.index[fields[0], default: [:]][fields[1]] = fields[2]
            mapping.entries.append(Entry(collection: fields[0], key: fields[1], cluster: fields[2], line: line))
        }
        return mapping
    }

    /// Splits CSV text into records of fields, each with its 1-based starting line.
    static func splitRecords(_ text: String) throws -> [(Int, [String])] {
        var records: [(Int, [String])] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var fieldWasQuoted = false
        var line = 1
        var recordLine = 1
        var characters = Array(text.unicodeScalars)[...]
        func endRecord() {
            fields.append(field)
            records.append((recordLine, fields))
            fields = []
            field = ""
            fieldWasQuoted = false
        }
        while let scalar = characters.popFirst() {
            if inQuotes {
                if scalar == "\"" {
                    if characters.first == "\"" {
                        characters.removeFirst()
                        field.unicodeScalars.append("\"")
                    } else {
                        inQuotes = false
                    }
                } else {
                    if scalar == "\n" { line += 1 }
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"":
                guard field.isEmpty, !fieldWasQuoted else {
                    throw HostError(.mappingInvalid, "mapping line \(line): a quote inside an unquoted field")
                }
                inQuotes = true
                fieldWasQuoted = true
            case ",":
                fields.append(field)
                field = ""
                fieldWasQuoted = false
            case "\r":
                if characters.first == "\n" { continue }
                endRecord()
                line += 1
                recordLine = line
            case "\n":
                endRecord()
                line += 1
                recordLine = line
            default:
                guard !fieldWasQuoted else {
                    throw HostError(.mappingInvalid, "mapping line \(line): text after a closing quote")
                }
                field.unicodeScalars.append(scalar)
            }
        }
        if inQuotes { throw HostError(.mappingInvalid, "mapping line \(recordLine): unterminated quoted field") }
        if !field.isEmpty || !fields.isEmpty || fieldWasQuoted { endRecord() }
        return records
    }
}
