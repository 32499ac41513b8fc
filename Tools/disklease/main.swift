import DiskLeaseCLI
DiskLeaseCommand.main()
