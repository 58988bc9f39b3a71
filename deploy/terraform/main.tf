# AWS IoT identity for one GoPiGo robot (or controller): the seed's Terraform,
# with a least-privilege fleet policy instead of iot:* on *.
#
# The certificate is signed from a CSR, so the private key never leaves the
# device. The policy uses ${iot:Connection.Thing.ThingName} (written $${...}
# in HCL): one policy serves the whole fleet and a robot can only touch its
# own topics, shadow and jobs. It is the same document `gopigo provision` writes.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  arn         = "arn:aws:iot:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}"
  me          = "$${iot:Connection.Thing.ThingName}"
  policy_name = var.policy_name != "" ? var.policy_name : "gopigo-${var.role}"

  robot_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ConnectAsOwnThing"
        Effect   = "Allow"
        Action   = "iot:Connect"
        Resource = "${local.arn}:client/${local.me}"
      },
      {
        Sid    = "OwnTopicsShadowAndJobs"
        Effect = "Allow"
        Action = ["iot:Publish", "iot:Receive"]
        Resource = [
          "${local.arn}:topic/gopigo/${local.me}/*",
          "${local.arn}:topic/$aws/things/${local.me}/shadow/*",
          "${local.arn}:topic/$aws/things/${local.me}/jobs/*",
        ]
      },
      {
        Sid    = "SubscribeOwnTopicsShadowAndJobs"
        Effect = "Allow"
        Action = "iot:Subscribe"
        Resource = [
          "${local.arn}:topicfilter/gopigo/${local.me}/*",
          "${local.arn}:topicfilter/$aws/things/${local.me}/shadow/*",
          "${local.arn}:topicfilter/$aws/things/${local.me}/jobs/*",
        ]
      },
      {
        Sid      = "RetainOwnStatus"
        Effect   = "Allow"
        Action   = "iot:RetainPublish"
        Resource = "${local.arn}:topic/gopigo/${local.me}/status"
      },
    ]
  }

  controller_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ConnectAsOwnThing"
        Effect   = "Allow"
        Action   = "iot:Connect"
        Resource = "${local.arn}:client/${local.me}"
      },
      {
        Sid    = "CommandsDetectionsShadowRequests"
        Effect = "Allow"
        Action = "iot:Publish"
        Resource = [
          "${local.arn}:topic/gopigo/*/cmd",
          "${local.arn}:topic/gopigo/*/detections",
          "${local.arn}:topic/$aws/things/*/shadow/update",
          "${local.arn}:topic/$aws/things/*/shadow/get",
          "${local.arn}:topic/gopigo/${local.me}/check",
        ]
      },
      {
        Sid    = "ReadFleet"
        Effect = "Allow"
        Action = "iot:Receive"
        Resource = [
          "${local.arn}:topic/gopigo/*/telemetry",
          "${local.arn}:topic/gopigo/*/status",
          "${local.arn}:topic/gopigo/*/cmd/result",
          "${local.arn}:topic/gopigo/*/detections",
          "${local.arn}:topic/$aws/things/*/shadow/*",
          "${local.arn}:topic/gopigo/${local.me}/check",
        ]
      },
      {
        Sid    = "SubscribeFleet"
        Effect = "Allow"
        Action = "iot:Subscribe"
        Resource = [
          "${local.arn}:topicfilter/gopigo/*/telemetry",
          "${local.arn}:topicfilter/gopigo/*/status",
          "${local.arn}:topicfilter/gopigo/*/cmd/result",
          "${local.arn}:topicfilter/gopigo/*/detections",
          "${local.arn}:topicfilter/$aws/things/*/shadow/*",
          "${local.arn}:topicfilter/gopigo/${local.me}/check",
        ]
      },
    ]
  }
}

# Sign the device's CSR (aws iot create-certificate-from-csr --set-as-active).
resource "aws_iot_certificate" "device" {
  csr    = file(var.csr_path)
  active = true
}

resource "aws_iot_thing" "device" {
  name = var.thing_name
}

resource "aws_iot_policy" "fleet" {
  count  = var.create_policy ? 1 : 0
  name   = local.policy_name
  policy = var.role == "robot" ? jsonencode(local.robot_policy) : jsonencode(local.controller_policy)
}

resource "aws_iot_policy_attachment" "device" {
  policy = var.create_policy ? aws_iot_policy.fleet[0].name : local.policy_name
  target = aws_iot_certificate.device.arn
}

resource "aws_iot_thing_principal_attachment" "device" {
  thing     = aws_iot_thing.device.name
  principal = aws_iot_certificate.device.arn
}

# The account's MQTT endpoint (aws iot describe-endpoint --endpoint-type iot:Data-ATS).
data "aws_iot_endpoint" "data" {
  endpoint_type = "iot:Data-ATS"
}
