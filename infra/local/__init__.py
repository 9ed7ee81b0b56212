"""The embedded local cloud: the synthesized template, live on 127.0.0.1.

A moto server is the AWS of the local run. Every resource of the CDK app's template is created in
it with the same wiring (`provision`); what moto cannot run we run ourselves from the same template:
Lambda handlers in worker processes with each function's own environment (`runtime`), SQS event
source mappings (`pollers`), schedules (`scheduler`) and the REST API with its Cognito authorizer
(`gateway`). `LocalCloud` puts it together; `ecrm local up` and `ecrm demo` run it.
"""
