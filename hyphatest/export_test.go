package hyphatest

// EnvAMQPURI is envAMQPURI, for the tests of package hyphatest_test.
const EnvAMQPURI = envAMQPURI
