"""The rotation functions secretsd ships, each a Lambda-style ``lambda_handler(event, context)``.

They reach Secrets Manager only through boto3 and import nothing of secretsd outside this
package, so the same code runs under the secretsd orchestrator and on AWS Lambda.
``FUNCTIONS`` maps each function's name to its module in this package.
"""

FUNCTIONS = {
    "secretsd-mysql-single-user": "mysql_single_user",
    "secretsd-mysql-multi-user": "mysql_multi_user",
    "secretsd-postgresql-single-user": "postgresql_single_user",
    "secretsd-postgresql-multi-user": "postgresql_multi_user",
    "secretsd-generic": "generic",
}
