"""AWS JSON 1.1 wire protocol for the machinelearning API, driven by botocore's service model.

spec: the service model; routing: X-Amz-Target -> operation -> handler; parse: request body ->
validated params; serialize: result dict or ServiceError -> response body; http: framework-neutral
request checks and headers; sigv4: signature verification and the server credentials file.
"""
