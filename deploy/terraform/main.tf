# AWS IoT identity for one GoPiGo robot (or controller): the seed's Terraform,
# with a least-privilege fleet policy instead of iot:* on *.
#
# The certificate is signed from a CSR, so the private key never leaves the
# device. The policy uses ${iot:Connection.Thing.ThingName} (written $${...}
# in the templates): one policy serves the whole fleet and a robot can only
# touch its own topics, shadow and jobs. It is the same document `gopigo provision`
# writes: policies/ROLE.json.tftpl is `gopigo policy --role ROLE --template`.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  policy_name = var.policy_name != "" ? var.policy_name : "gopigo-${var.role}"
  # The policies are `gopigo policy --role ROLE --template`, checked in; a
  # unit test (crates/provision, terraform_uses_the_same_policies) fails when
  # they differ from what `gopigo provision` attaches.
  policy_document = templatefile("${path.module}/policies/${var.role}.json.tftpl", {
    partition  = data.aws_partition.current.partition
    region     = data.aws_region.current.name
    account_id = data.aws_caller_identity.current.account_id
  })
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
  policy = local.policy_document
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
