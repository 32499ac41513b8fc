public struct DiskLeaseCommand { public static func main() {} }
