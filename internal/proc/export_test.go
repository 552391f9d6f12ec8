package proc

// PortLimit exposes portLimit to the tests of package proc_test.
var PortLimit = portLimit
